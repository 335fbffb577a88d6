# vtpmd: rules added by this folder
