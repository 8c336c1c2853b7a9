workflow = {
  steps = {
    a = { depends_on = { "c" }, code = "function run() end" },
    b = { depends_on = { "a" }, code = "function run() end" },
    c = { depends_on = { "b" }, code = "function run() end" },
    d = { code = "function run() end" },
  },
}
