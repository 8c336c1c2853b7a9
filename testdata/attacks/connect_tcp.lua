-- Attack: open a TCP connection to a listener the test runs on
-- 127.0.0.1:@TCP_PORT@ (an HTTP server that counts every connection).
-- Python, JavaScript and shell use sockets; Lua and WASM have none and go
-- through the host API without a net grant (WASM also through Extism's own
-- http_request). The control steps are granted the address and must get
-- through, which shows the listener is reachable at all.
local url = "http://127.0.0.1:@TCP_PORT@/attack"
workflow = {
  name = "attack_connect_tcp",
  steps = {
    python = {
      language = "python",
      code = [[
import socket

def run():
    s = socket.create_connection(("127.0.0.1", @TCP_PORT@), timeout=5)
    s.sendall(b"GET /attack HTTP/1.0\r\n\r\n")
    return {"escaped": s.recv(100).decode()}
]],
    },
    javascript = {
      language = "javascript",
      code = [[
const net = require('net');

async function run() {
  return await new Promise((resolve, reject) => {
    const s = net.connect(@TCP_PORT@, '127.0.0.1', () => resolve({ escaped: 'connected' }));
    s.on('error', reject);
  });
}
]],
    },
    shell = {
      language = "shell",
      code = [[
exec 3<>/dev/tcp/127.0.0.1/@TCP_PORT@
echo '{"escaped": "connected"}'
]],
    },
    lua = {
      code = [[
function run()
  return { escaped = hwe.http_fetch("]] .. url .. [[").status }
end
]],
    },
    wasm = { language = "wasm", module = "@WASM@", func = "connect_tcp", env = { URL = url } },
    wasm_extism = { language = "wasm", module = "@WASM@", func = "connect_tcp", env = { URL = url, EXTISM = "1" },
                    allow = { net = { "127.0.0.1:1" } } },
    control_lua = {
      allow = { net = { "127.0.0.1:@TCP_PORT@" } },
      code = [[
function run()
  return { status = hwe.http_fetch("http://127.0.0.1:@TCP_PORT@/control").status }
end
]],
    },
  },
}
