flow = { steps = {} }
