# storage: rules added by this folder
