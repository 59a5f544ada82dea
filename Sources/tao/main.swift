print("tao")
