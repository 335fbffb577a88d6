# tests: rules added by this folder
