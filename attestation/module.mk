# attestation: rules added by this folder
