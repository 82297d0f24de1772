//! Finding PEM blocks in a key file.
//!
//! A key file may hold more than one block (`openssl ecparam -genkey` writes an
//! `EC PARAMETERS` block before the `EC PRIVATE KEY`) and text around them (`openssl ec -text`),
//! so the blocks are found first and each is then decoded with RFC 7468's strict grammar.

use p256::pkcs8::der::pem as rfc7468;
use zeroize::Zeroizing;

use crate::{Error, Result};

const BEGIN: &[u8] = b"-----BEGIN ";
const DASHES: &[u8] = b"-----";

/// One PEM block of a document: its label and its text from `-----BEGIN` to the end of its
/// `-----END` line.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    pub label: &'a str,
    text: &'a [u8],
}

impl<'a> Block<'a> {
    /// The block's content, base64-decoded. `what` names the document in errors.
    pub fn decode(&self, what: &str) -> Result<Zeroizing<Vec<u8>>> {
        if contains(self.text, b"Proc-Type:") {
            return Err(Error::input(format!(
                "{what}: the {} block is encrypted the legacy OpenSSL way (Proc-Type header), \
                 which is not supported: convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)",
                self.label
            )));
        }
        let (_, bytes) = rfc7468::decode_vec(self.text).map_err(|e| {
            Error::input(format!("{what}: malformed {} PEM block: {e}", self.label))
        })?;
        Ok(Zeroizing::new(bytes))
    }
}

/// Every PEM block of `doc`, in order. Text outside blocks is ignored; a block that is begun
/// but never ended is an error.
pub fn blocks<'a>(doc: &'a [u8], what: &str) -> Result<Vec<Block<'a>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = find_line_start(doc, pos, BEGIN) {
        let after_begin = start + BEGIN.len();
        let line_end = doc[after_begin..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(doc.len(), |i| after_begin + i);
        let line = trim_end(&doc[after_begin..line_end]);
        let label = line
            .strip_suffix(DASHES)
            .and_then(|l| std::str::from_utf8(l).ok())
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
            .ok_or_else(|| Error::input(format!("{what}: malformed PEM BEGIN line")))?;
        let end_marker = [b"-----END ", label.as_bytes(), DASHES].concat();
        let end = find_line_start(doc, line_end, &end_marker).ok_or_else(|| {
            Error::input(format!("{what}: the {label} PEM block has no END line"))
        })?;
        let text_end = end + end_marker.len();
        out.push(Block {
            label,
            text: &doc[start..text_end],
        });
        pos = text_end;
    }
    Ok(out)
}

/// The first occurrence of `needle` at `from` or later that starts a line.
fn find_line_start(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let rel = hay[i..].windows(needle.len()).position(|w| w == needle)?;
        let at = i + rel;
        if at == 0 || hay[at - 1] == b'\n' {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_blocks_among_text_and_skips_none() {
        let doc = b"some text\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN A B-----\r\nAAEC\r\n-----END A B-----";
        let b = blocks(doc, "key").unwrap();
        let labels: Vec<_> = b.iter().map(|b| b.label).collect();
        assert_eq!(labels, ["EC PARAMETERS", "A B"]);
        assert_eq!(&b[1].decode("key").unwrap()[..], &[0, 1, 2]);
        assert_eq!(&b[0].decode("key").unwrap()[..2], &[6, 8]);
    }

    #[test]
    fn unterminated_and_malformed_blocks_are_errors() {
        let e = blocks(b"-----BEGIN X-----\nAAAA\n", "key").unwrap_err();
        assert_eq!(e.to_string(), "key: the X PEM block has no END line");
        let e = blocks(b"-----BEGIN X\nAAAA\n", "key").unwrap_err();
        assert_eq!(e.to_string(), "key: malformed PEM BEGIN line");
        let b = blocks(b"-----BEGIN X-----\n!!!!\n-----END X-----\n", "key").unwrap();
        let e = b[0].decode("key").unwrap_err().to_string();
        assert!(e.starts_with("key: malformed X PEM block: "), "{e}");
        assert!(blocks(b"no pem here", "key").unwrap().is_empty());
    }
}
