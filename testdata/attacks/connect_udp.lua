-- Attack: send UDP datagrams to a listener the test runs on
-- 127.0.0.1:@UDP_PORT@ (Landlock does not cover UDP; seccomp and the
-- network namespace must). Lua and WASM have no sockets and the host API
-- speaks only HTTP, so they have no step here.
workflow = {
  name = "attack_connect_udp",
  steps = {
    python = {
      language = "python",
      code = [[
import socket

def run():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3):
        s.sendto(b"escaped", ("127.0.0.1", @UDP_PORT@))
    return {"escaped": "sent"}
]],
    },
    javascript = {
      language = "javascript",
      code = [[
const dgram = require('dgram');

async function run() {
  const s = dgram.createSocket('udp4');
  return await new Promise((resolve, reject) => {
    s.on('error', reject);
    s.send('escaped', @UDP_PORT@, '127.0.0.1', (err) => (err ? reject(err) : resolve({ escaped: 'sent' })));
  });
}
]],
    },
    shell = {
      language = "shell",
      code = [[
for i in 1 2 3; do echo escaped > /dev/udp/127.0.0.1/@UDP_PORT@; done
echo '{"escaped": "sent"}'
]],
    },
  },
}
