# tools: rules added by this folder
