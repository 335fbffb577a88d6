# guest-driver: rules added by this folder
