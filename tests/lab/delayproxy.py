#!/usr/bin/python3
"""TCP delay proxy for the gedge lab's far hosts (the kernel here has no netem).

    delayproxy.py LISTEN_ADDR LISTEN_PORT TARGET_ADDR TARGET_PORT DELAY_FILE [PID_FILE]

Every chunk of bytes is forwarded DELAY ms after it was read, in both directions, so an
application-level round trip over an established connection grows by 2*DELAY.  Chunks are
pipelined (each keeps its own deadline), so throughput is not cut.  DELAY is read from
DELAY_FILE (integer milliseconds) at start and again on SIGHUP: `lab.sh delay far1 MS`
changes it live, for new and existing connections.
"""

import asyncio
import os
import signal
import socket
import sys


class Delay:
    def __init__(self, path):
        self.path = path
        self.seconds = 0.0
        self.reload()

    def reload(self):
        try:
            with open(self.path) as f:
                self.seconds = max(0, int(f.read().strip() or "0")) / 1000.0
        except (OSError, ValueError) as e:
            print(f"delayproxy: cannot read {self.path}: {e}", file=sys.stderr)


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            deadline, data = await queue.get()
            wait = deadline - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.write_eof() if writer.can_write_eof() else writer.close()
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay.seconds, data))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()
    finally:
        writer.close()


async def main():
    laddr, lport, taddr, tport, delay_file = sys.argv[1:6]
    delay = Delay(delay_file)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, delay.reload)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)

    async def handle(creader, cwriter):
        try:
            ureader, uwriter = await asyncio.open_connection(taddr, int(tport))
        except OSError:
            cwriter.close()
            return
        nodelay(cwriter)
        nodelay(uwriter)
        await asyncio.gather(pump(creader, uwriter, delay), pump(ureader, cwriter, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, laddr, int(lport), reuse_address=True)
    if len(sys.argv) > 6:
        with open(sys.argv[6] + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(sys.argv[6] + ".tmp", sys.argv[6])
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, RuntimeError):
        pass
