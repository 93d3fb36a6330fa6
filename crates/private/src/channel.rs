//! The wire between the two parties of an inference. A [`Channel`] carries
//! whole messages as bytes, each party holding one end: over an in-process
//! channel, or over a real TCP socket on the loopback interface
//! ([`Network`]), framed by an 8-byte length. [`two_parties`] runs the
//! client and the server in two threads over a fresh pair.
//!
//! The protocols built on it alternate strictly (one party sends, the
//! other receives, then the other way), so neither side ever blocks on a
//! full socket while the other does too.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

pub use explore_spec::Network;

use crate::PrivateError;

enum Wire {
    Memory {
        tx: Sender<Vec<u8>>,
        rx: Mutex<Receiver<Vec<u8>>>,
    },
    Tcp(TcpStream),
}

/// One party's end of the wire: it sends and receives whole messages, and
/// counts the time it spent waiting for one.
pub struct Channel {
    wire: Wire,
    waited_ns: AtomicU64,
    sent: AtomicUsize,
}

fn hung_up(why: impl std::fmt::Display) -> PrivateError {
    PrivateError::Channel(format!("the other party hung up ({why})"))
}

impl Channel {
    fn new(wire: Wire) -> Channel {
        Channel {
            wire,
            waited_ns: AtomicU64::new(0),
            sent: AtomicUsize::new(0),
        }
    }

    /// Two ends of a fresh wire over `network`.
    pub fn pair(network: Network) -> Result<(Channel, Channel), PrivateError> {
        match network {
            Network::Memory => {
                let (a_tx, b_rx) = channel();
                let (b_tx, a_rx) = channel();
                let end = |tx, rx| {
                    Channel::new(Wire::Memory {
                        tx,
                        rx: Mutex::new(rx),
                    })
                };
                Ok((end(a_tx, a_rx), end(b_tx, b_rx)))
            }
            Network::Loopback => {
                let socket = |e: std::io::Error| {
                    PrivateError::Channel(format!("opening a loopback socket: {e}"))
                };
                let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(socket)?;
                let address = listener.local_addr().map_err(socket)?;
                let a = TcpStream::connect(address).map_err(socket)?;
                let (b, _) = listener.accept().map_err(socket)?;
                for s in [&a, &b] {
                    // Messages are whole; Nagle's delay would only add latency.
                    s.set_nodelay(true).map_err(socket)?;
                }
                Ok((Channel::new(Wire::Tcp(a)), Channel::new(Wire::Tcp(b))))
            }
        }
    }

    /// Sends one message (moved, not copied, into an in-process channel:
    /// a layer's garbled tables are tens of megabytes).
    pub fn send(&self, message: impl Into<Vec<u8>>) -> Result<(), PrivateError> {
        let message = message.into();
        let len = message.len();
        // A send over a socket blocks while the other party is busy and
        // its buffer full: that is waiting too.
        let clock = Instant::now();
        match &self.wire {
            Wire::Memory { tx, .. } => tx.send(message).map_err(hung_up)?,
            Wire::Tcp(s) => {
                let mut s = s;
                s.write_all(&(len as u64).to_le_bytes())
                    .and_then(|()| s.write_all(&message))
                    .map_err(hung_up)?;
            }
        }
        self.sent.fetch_add(len, Ordering::Relaxed);
        self.waited_ns
            .fetch_add(clock.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Waits for the next message.
    pub fn recv(&self) -> Result<Vec<u8>, PrivateError> {
        let clock = Instant::now();
        let message = match &self.wire {
            Wire::Memory { rx, .. } => rx
                .lock()
                .expect("one thread per end")
                .recv()
                .map_err(hung_up)?,
            Wire::Tcp(s) => {
                let mut s = s;
                let mut len = [0u8; 8];
                s.read_exact(&mut len).map_err(hung_up)?;
                let len = u64::from_le_bytes(len);
                // Memory grows only as bytes arrive, whatever the frame
                // claims.
                let mut message = Vec::new();
                s.take(len).read_to_end(&mut message).map_err(hung_up)?;
                if message.len() as u64 != len {
                    return Err(hung_up(format!(
                        "a frame of {len} bytes ended after {}",
                        message.len()
                    )));
                }
                message
            }
        };
        self.waited_ns
            .fetch_add(clock.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(message)
    }

    /// The time this end spent in [`Channel::recv`] and blocked in
    /// [`Channel::send`], waiting for the other party or the wire.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed))
    }

    /// The bytes this end has sent.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Runs `client` and `server` in two threads, each with its end of a fresh
/// wire over `network`. If either fails, its end closes and the other's
/// next receive fails too: the error returned is the one that came first.
pub fn two_parties<C, S, E>(
    network: Network,
    client: impl FnOnce(&Channel) -> Result<C, E> + Send,
    server: impl FnOnce(&Channel) -> Result<S, E> + Send,
) -> Result<(C, S), E>
where
    C: Send,
    S: Send,
    E: Send + From<PrivateError>,
{
    let (client_end, server_end) = Channel::pair(network)?;
    // 0 while both run; then 1 if the client failed first, 2 the server.
    let first = AtomicUsize::new(0);
    let finish = |party: usize, end: Channel, failed: bool| {
        if failed {
            let _ = first.compare_exchange(0, party, Ordering::SeqCst, Ordering::SeqCst);
        }
        // The end closes only now, after the failure is recorded.
        drop(end);
    };
    let finish = &finish;
    let (c, s) = std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            let s = server(&server_end);
            finish(2, server_end, s.is_err());
            s
        });
        let c = client(&client_end);
        finish(1, client_end, c.is_err());
        let s = handle.join().expect("the server's thread does not panic");
        (c, s)
    });
    match (c, s) {
        (Ok(c), Ok(s)) => Ok((c, s)),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        (Err(c), Err(s)) => Err(if first.load(Ordering::SeqCst) == 2 {
            s
        } else {
            c
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_whole_and_in_order_over_both_networks() {
        for network in Network::ALL {
            let (a, b) = Channel::pair(network).unwrap();
            let big: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
            a.send(b"first").unwrap();
            a.send(&[]).unwrap();
            let reader = std::thread::spawn(move || {
                let got = (b.recv().unwrap(), b.recv().unwrap(), b.recv().unwrap());
                b.send(b"back").unwrap();
                got
            });
            a.send(big.clone()).unwrap();
            assert_eq!(a.recv().unwrap(), b"back");
            let (first, empty, third) = reader.join().unwrap();
            assert_eq!((first.as_slice(), empty.len()), (&b"first"[..], 0));
            assert_eq!(third, big, "{network}");
            assert_eq!(a.sent(), 5 + big.len());
        }
    }

    #[test]
    fn the_first_failure_is_the_error_and_the_other_party_sees_a_hang_up() {
        for network in Network::ALL {
            let result = two_parties(
                network,
                |channel| {
                    channel.send(b"query")?;
                    channel.recv()?;
                    Ok::<_, PrivateError>(())
                },
                |channel| {
                    channel.recv()?;
                    Err::<(), _>(PrivateError::Channel("the server refused the query".into()))
                },
            );
            assert_eq!(
                result,
                Err(PrivateError::Channel("the server refused the query".into()))
            );
            let (c, s) = two_parties(
                network,
                |channel| {
                    channel.send(b"ping")?;
                    channel.recv()
                },
                |channel| {
                    let m = channel.recv()?;
                    channel.send([m.as_slice(), b"-pong"].concat())?;
                    Ok::<_, PrivateError>(m.len())
                },
            )
            .unwrap();
            assert_eq!((c.as_slice(), s), (&b"ping-pong"[..], 4));
        }
    }
}
