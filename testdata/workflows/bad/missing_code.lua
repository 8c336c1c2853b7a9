workflow = {
  name = "missing_code",
  steps = {
    a = { language = "python" },
    b = { language = "lua" },
  },
}
