workflow = {
  steps = {
    a = {
      language = "lua",
      code = "function run() end",
      timout = "5s",
    },
    b = { language = "cobol", code = "x" },
    c = { depends_on = "a", code = "function run() end" },
    d = { code = "function run() end", timeout = "soon", retries = { max = -1 } },
    e = { code = "function run() end", allow = { net = "example.com", disk = true } },
  },
}
