_version = 0.32
