-- A click-stream pipeline in JavaScript (Node.js).
--
-- Each step defines run(); a root step is called as run(), the others as
-- run(inputs). `inputs` is also in scope, as is outputResult(value), which
-- prints value as a JSON line. The output is parsed from what the step
-- printed, with the result printed last, as the reference engine does:
-- an object or array is kept, a number or string p becomes {"value": p}.
-- Unlike the reference, an async run() is awaited, require() works relative
-- to the run's folder, and console output goes to the step's log.
workflow = {
  name = "javascript_pipeline",
  description = "Group click events into sessions and summarise them, in JavaScript",

  steps = {
    events = {
      language = "javascript",
      code = [[
function run() {
  const users = ["ada", "brian", "chen"];
  const pages = ["/", "/docs", "/pricing", "/signup"];
  const events = [];
  // A deterministic stream: user i visits a page every (i+2) minutes.
  for (let i = 0; i < 12; i++) {
    const user = users[i % users.length];
    events.push({ user, page: pages[(i * 7) % pages.length], minute: i * (users.indexOf(user) + 2) });
  }
  console.log(`generated ${events.length} events`);
  return { events };
}
]],
    },

    sessions = {
      language = "js",
      depends_on = { "events" },
      code = [[
const GAP_MINUTES = 10;

// An async run is awaited (the reference printed {} for it).
async function run(inputs) {
  await new Promise((resolve) => setTimeout(resolve, 5));
  const byUser = {};
  for (const e of inputs.events.events) {
    (byUser[e.user] = byUser[e.user] || []).push(e);
  }
  const sessions = [];
  for (const [user, list] of Object.entries(byUser)) {
    list.sort((a, b) => a.minute - b.minute);
    let current = null;
    for (const e of list) {
      if (!current || e.minute - current.end > GAP_MINUTES) {
        current = { user, start: e.minute, end: e.minute, pages: [] };
        sessions.push(current);
      }
      current.end = e.minute;
      current.pages.push(e.page);
    }
  }
  return sessions;
}
]],
    },

    session_count = {
      language = "node",
      depends_on = { "sessions" },
      code = [[
function run(inputs) {
  // A number is wrapped: the output is {"value": N}.
  return inputs.sessions.length;
}
]],
    },

    summary = {
      language = "javascript",
      depends_on = { "sessions", "session_count" },
      code = [[
const path = require("path");

function run(inputs) {
  const sessions = inputs.sessions;
  const signups = sessions.filter((s) => s.pages.includes("/signup")).length;
  const longest = sessions.reduce((a, b) => (b.end - b.start > a.end - a.start ? b : a));
  outputResult({ progress: "summary computed" }); // an extra JSON line; the result line comes last and wins
  return {
    sessions: inputs.session_count.value,
    converted: signups,
    conversion_rate: (signups / sessions.length * 100).toFixed(1) + "%",
    longest_session: { user: longest.user, minutes: longest.end - longest.start },
    entry_pages: [...new Set(sessions.map((s) => s.pages[0]))].sort(),
    report_file: path.basename("reports/summary.json"),
  };
}
]],
    },
  },
}
