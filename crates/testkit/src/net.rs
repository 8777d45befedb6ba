//! Free ports, a counting HTTP server, a UDP echo server and a UDP echo client.

use std::net::{IpAddr, Ipv4Addr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// 127.0.0.1.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A port free for both TCP and UDP on 127.0.0.1 (bounded retries).
pub fn free_port() -> u16 {
    free_port_on(LOCALHOST)
}

/// A port free for both TCP and UDP on `ip` and on the wildcard address (so a process binding
/// `0.0.0.0` can take it too).
pub fn free_port_on(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let tcp = StdTcpListener::bind((ip, 0)).expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        drop(tcp);
        let wild = StdTcpListener::bind(("0.0.0.0", port));
        if wild.is_ok() && StdUdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port found on {ip}");
}

/// One request the HTTP server saw: bytes received and bytes answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exchange {
    pub request: u64,
    pub response: u64,
}

/// An HTTP server on 127.0.0.1: `GET /N` answers N bytes; `GET /slow/N` answers N bytes at about
/// 8 MB/s. Every exchange is logged with its exact byte counts.
pub struct Http {
    pub ip: IpAddr,
    pub port: u16,
    pub log: Arc<Mutex<Vec<Exchange>>>,
}

impl Http {
    /// On 127.0.0.1.
    pub async fn start() -> Http {
        Http::start_on(LOCALHOST).await
    }

    /// On `ip` (an address of this host or of the test's network namespace).
    pub async fn start_on(ip: IpAddr) -> Http {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind http");
        let port = listener.local_addr().expect("addr").port();
        let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let l2 = log.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let log = l2.clone();
                tokio::spawn(async move { serve_http(s, log).await });
            }
        });
        Http { ip, port, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            std::net::SocketAddr::new(self.ip, self.port)
        )
    }

    /// Sum of everything exchanged so far.
    pub fn totals(&self) -> Exchange {
        let log = self.log.lock().expect("log");
        log.iter().fold(Exchange::default(), |a, e| Exchange {
            request: a.request + e.request,
            response: a.response + e.response,
        })
    }

    /// Number of requests answered so far.
    pub fn requests(&self) -> usize {
        self.log.lock().expect("log").len()
    }
}

/// Reads an HTTP request up to the end of its head (at most 16 KiB); `None` when the peer
/// closes or sends too much first.
pub async fn read_request_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 16384 {
            return None;
        }
    }
    Some(req)
}

/// An HTTP server on 127.0.0.1 answering every request with `status` (`200 OK`), the extra
/// `headers` (each `Name: value`) and the body `answer()` gives at that moment; returns its port.
pub async fn answering<F>(status: &str, headers: &[&str], answer: F) -> u16
where
    F: Fn() -> Vec<u8> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut fixed = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        fixed.push_str(h);
        fixed.push_str("\r\n");
    }
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = answer();
            let mut head = fixed.clone();
            tokio::spawn(async move {
                if read_request_head(&mut s).await.is_none() {
                    return;
                }
                head.push_str(&format!(
                    "Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ));
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

async fn serve_http(mut s: TcpStream, log: Arc<Mutex<Vec<Exchange>>>) {
    let Some(req) = read_request_head(&mut s).await else {
        return;
    };
    let line = String::from_utf8_lossy(&req);
    let path = line.split_whitespace().nth(1).unwrap_or("/0").to_owned();
    let (slow, n) = match path.strip_prefix("/slow/") {
        Some(n) => (true, n.parse::<usize>().unwrap_or(0)),
        None => (
            false,
            path.trim_start_matches('/').parse::<usize>().unwrap_or(0),
        ),
    };
    let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n");
    // Logged before answering: curl may exit (and the test read the log) as soon as the last
    // byte arrives, before this task would get to record it.
    log.lock().expect("log").push(Exchange {
        request: req.len() as u64,
        response: (header.len() + n) as u64,
    });
    if s.write_all(header.as_bytes()).await.is_err() {
        return;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        if s.write_all(&chunk[..k]).await.is_err() {
            break;
        }
        left -= k;
        if slow {
            tokio::time::sleep(Duration::from_millis(8)).await;
        }
    }
    let _ = s.shutdown().await;
}

/// The established IPv4 TCP connections whose local port is `port` (the server's side, accepted
/// or still queued), and how many of them hold received bytes their owner has not read yet, from
/// `/proc/net/tcp`. Tells a test when a server has read what its clients sent.
pub fn tcp_server_side(port: u16) -> (usize, usize) {
    let needle = format!(":{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let mut established = 0;
    let mut unread = 0;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl, local address, remote address, state (01 = established), tx_queue:rx_queue, …
        if f.len() > 4 && f[1].ends_with(&needle) && f[3] == "01" {
            established += 1;
            let rx = f[4].split(':').nth(1).unwrap_or("0");
            if u64::from_str_radix(rx, 16).unwrap_or(0) > 0 {
                unread += 1;
            }
        }
    }
    (established, unread)
}

/// A UDP echo server on 127.0.0.1; returns its port.
pub async fn udp_echo() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let port = s.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], peer).await;
        }
    });
    port
}

/// Sends `count` datagrams of `size` bytes to 127.0.0.1:`port` one by one, waiting up to 3 s
/// for each echo; returns how many came back intact.
pub async fn echo_through(port: u16, count: usize, size: usize) -> usize {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    for i in 0..count {
        let payload = vec![i as u8; size];
        s.send_to(&payload, ("127.0.0.1", port))
            .await
            .expect("send");
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(3), s.recv_from(&mut buf)).await
        {
            if buf[..n] == payload[..] {
                got += 1;
            }
        }
    }
    got
}

/// Opens a TCP stream to `host:port` through the SOCKS5 proxy on 127.0.0.1:`socks` (no auth;
/// the name is sent as a domain, resolved by the proxy's server side). `None` when the proxy
/// refuses or fails.
pub async fn socks5_connect(socks: u16, host: &str, port: u16) -> Option<TcpStream> {
    let mut s = TcpStream::connect((LOCALHOST, socks)).await.ok()?;
    s.write_all(&[5, 1, 0]).await.ok()?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.ok()?;
    if reply != [5, 0] {
        return None;
    }
    let name = host.as_bytes();
    let mut req = vec![5, 1, 0, 3, u8::try_from(name.len()).ok()?];
    req.extend_from_slice(name);
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.ok()?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.ok()?;
    if head[1] != 0 {
        return None;
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => usize::from(s.read_u8().await.ok()?) + 2,
        _ => return None,
    };
    let mut skip = vec![0u8; rest];
    s.read_exact(&mut skip).await.ok()?;
    Some(s)
}
