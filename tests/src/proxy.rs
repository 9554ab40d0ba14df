//! A test-only TCP proxy on loopback that can stand between any two parts: it can cut the
//! link (dropping every connection and refusing new ones), delay what crosses it (a slow or
//! stalled WAN), restore it, and point at a new target (a restarted server).

use std::{
    io::{self, Read as _, Write as _},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::Duration,
};

/// A running proxy; stops accepting when dropped.
pub struct Proxy {
    /// Where clients connect.
    pub address: String,
    shared: Arc<Shared>,
}

struct Shared {
    target: Mutex<String>,
    up: AtomicBool,
    stopped: AtomicBool,
    /// Milliseconds each chunk waits before it is passed on.
    delay_ms: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// Starts forwarding `127.0.0.1:<free port>` to `target`.
    pub fn start(target: &str) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?.to_string();
        let shared = Arc::new(Shared {
            target: Mutex::new(target.to_owned()),
            up: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if !accepting.up.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let target = accepting
                    .target
                    .lock()
                    .map(|t| t.clone())
                    .unwrap_or_default();
                let Ok(server) = TcpStream::connect(&target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                for s in [&client, &server] {
                    if let (Ok(c), Ok(mut open)) = (s.try_clone(), accepting.open.lock()) {
                        open.push(c);
                    }
                }
                pipe(&client, &server, &accepting);
                pipe(&server, &client, &accepting);
            }
        });
        Ok(Self { address, shared })
    }

    /// Drops every connection and refuses new ones, like a WAN cut.
    pub fn cut(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        if let Ok(mut open) = self.shared.open.lock() {
            for s in open.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Accepts connections again, and passes data on without delay.
    pub fn restore(&self) {
        self.shared.delay_ms.store(0, Ordering::SeqCst);
        self.shared.up.store(true, Ordering::SeqCst);
    }

    /// Holds everything that crosses, either way and on open connections too, for `delay`
    /// before passing it on: a slow link, or a stalled one when longer than a deadline.
    pub fn delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Forwards new connections to `target` from now on.
    pub fn retarget(&self, target: &str) {
        if let Ok(mut t) = self.shared.target.lock() {
            *t = target.to_owned();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(&self.address);
    }
}

fn pipe(from: &TcpStream, to: &TcpStream, shared: &Arc<Shared>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let shared = shared.clone();
    thread::spawn(move || {
        let mut buffer = [0; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer) {
            let delay = shared.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                #[expect(
                    clippy::disallowed_methods,
                    reason = "the delay is what this proxy simulates, not a synchronization"
                )]
                thread::sleep(Duration::from_millis(delay));
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
