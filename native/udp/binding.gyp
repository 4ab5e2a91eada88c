{
  "targets": [
    {
      "target_name": "udp",
      "sources": ["udp.c", "cipher.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
