local helpers = nil
workflow = {
  steps = {
    a = { code = helpers.code },
  },
}
