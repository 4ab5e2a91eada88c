{
  "targets": [
    {
      "target_name": "dscp",
      "sources": ["dscp.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
