workflow = {
  steps = {
    old = { run = function() return 1 end },
  },
}
