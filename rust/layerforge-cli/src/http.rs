//! A plain-HTTP/1.1 client for the few HEAD and GET requests of a re-push check: one
//! keep-alive connection, bodies by Content-Length or chunked. Everything it reads is
//! bounded: one total deadline for the whole check (every read and write waits at most
//! what is left of it, so a server sending a byte every few seconds cannot stretch it),
//! header lines, header count and body size (4 MiB, the manifest limit of registries).
//! It sends no credentials and follows no redirects: any answer but the expected one
//! means "let Python push".

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAX_BODY: usize = 4 << 20;
const MAX_HEADERS: usize = 100;
const MAX_LINE: u64 = 16 << 10;

/// The socket, with every read and write bounded by what is left of the deadline.
struct DeadlineStream {
    stream: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left)
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Connection {
    host: String,
    stream: BufReader<DeadlineStream>,
}

impl Connection {
    /// Connect to `host[:port]` (a checked registry name: port 80 when absent; `[v6]:port`
    /// accepted); every exchange on the connection must end before `deadline`.
    pub fn open(host: &str, deadline: Instant) -> Option<Self> {
        let with_port = if host.ends_with(']') || !host.contains(':') {
            format!("{host}:80")
        } else {
            host.into()
        };
        let addr = with_port.to_socket_addrs().ok()?.next()?;
        let left = deadline.checked_duration_since(Instant::now())?;
        let stream = TcpStream::connect_timeout(&addr, left).ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Connection {
            host: host.into(),
            stream: BufReader::new(DeadlineStream { stream, deadline }),
        })
    }

    pub fn request(&mut self, method: &str, path: &str, accept: Option<&str>) -> Option<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: layerforge/{}\r\n",
            self.host,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(accept) = accept {
            head.push_str(&format!("Accept: {accept}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.get_mut().write_all(head.as_bytes()).ok()?;
        self.read_response(method == "HEAD")
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        if self
            .stream
            .by_ref()
            .take(MAX_LINE)
            .read_line(&mut line)
            .ok()?
            == 0
            || !line.ends_with('\n')
        {
            return None;
        }
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    }

    fn read_response(&mut self, head_only: bool) -> Option<Response> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        if !parts.next()?.starts_with("HTTP/1.") {
            return None;
        }
        let status: u16 = parts.next()?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            if headers.len() == MAX_HEADERS {
                return None;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 {
            return Some(response);
        }
        if response
            .header("Transfer-Encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let digits = self.line()?;
                let digits = digits.split(';').next()?.trim();
                if digits.is_empty()
                    || digits.len() > 8
                    || !digits.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return None;
                }
                let size = usize::from_str_radix(digits, 16).ok()?;
                if size > MAX_BODY - response.body.len() {
                    return None;
                }
                let mut chunk = vec![0; size];
                self.stream.read_exact(&mut chunk).ok()?;
                response.body.extend_from_slice(&chunk);
                self.line()?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = response.header("Content-Length")?;
            if length.is_empty() || length.len() > 8 || !length.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let length: usize = length.parse().ok()?;
            if length > MAX_BODY {
                return None;
            }
            response.body = vec![0; length];
            self.stream.read_exact(&mut response.body).ok()?;
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::Connection;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    /// A one-connection server on loopback: reads the request head, then runs `answer`.
    fn serve(answer: impl FnOnce(&mut std::net::TcpStream) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let host = listener.local_addr().expect("its address").to_string();
        thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head);
                answer(&mut stream);
            }
        });
        host
    }

    /// `request` on a fresh connection, given at most `bound` to answer (the test fails
    /// rather than waits longer).
    fn ask(host: String, deadline: Duration, bound: Duration) -> Option<(u16, usize)> {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let answer = Connection::open(&host, Instant::now() + deadline)
                .and_then(|mut c| c.request("GET", "/v2/", None))
                .map(|r| (r.status, r.body.len()));
            let _ = tx.send(answer);
        });
        rx.recv_timeout(bound)
            .expect("the request ended within its bound")
    }

    #[test]
    fn a_dribbling_server_is_cut_off_at_the_deadline() {
        // A valid status line and valid headers, one byte every 100 ms: within the header
        // limits for a minute, so only a total deadline ends it sooner.
        let host = serve(|s| {
            let head = b"HTTP/1.1 200 OK\r\n".iter();
            for b in head.chain(b"X: y\r\n".iter().cycle()).take(10_000) {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        assert_eq!(
            ask(host, Duration::from_millis(500), Duration::from_secs(30)),
            None
        );
    }

    #[test]
    fn bodies_over_the_limit_are_refused() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 4194305\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400000\r\n",
        ] {
            let host = serve(move |s| {
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&[b'x'; 1 << 16]);
            });
            assert_eq!(
                ask(host, Duration::from_secs(5), Duration::from_secs(30)),
                None,
                "{head:?}"
            );
        }
        let host = serve(|s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            );
        });
        assert_eq!(
            ask(host, Duration::from_secs(5), Duration::from_secs(30)),
            Some((200, 5))
        );
    }
}
