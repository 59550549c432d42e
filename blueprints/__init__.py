"""HTTP and timer functions, one module per audience; handlers stay thin."""
