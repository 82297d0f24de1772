//! A plain-HTTP/1.1 client for the few HEAD and GET requests of a re-push check: one
//! keep-alive connection, bounded time, bodies by Content-Length or chunked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 4 << 20;
const MAX_HEADERS: usize = 100;

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
    stream: BufReader<TcpStream>,
}

impl Connection {
    /// Connect to `host[:port]` (port 80 when absent; `[v6]:port` accepted).
    pub fn open(host: &str) -> Option<Self> {
        let with_port = if host.ends_with(']') || !host.contains(':') {
            format!("{host}:80")
        } else {
            host.into()
        };
        let addr = with_port.to_socket_addrs().ok()?.next()?;
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        stream.set_write_timeout(Some(TIMEOUT)).ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Connection {
            host: host.into(),
            stream: BufReader::new(stream),
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
            .take(16 << 10)
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
                let size =
                    usize::from_str_radix(self.line()?.split(';').next()?.trim(), 16).ok()?;
                if response.body.len() + size > MAX_BODY {
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
            let length: usize = response.header("Content-Length")?.parse().ok()?;
            if length > MAX_BODY {
                return None;
            }
            response.body = vec![0; length];
            self.stream.read_exact(&mut response.body).ok()?;
        }
        Some(response)
    }
}
