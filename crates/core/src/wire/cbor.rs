//! The CBOR subset the wire uses, and nothing more: unsigned integers (major type 0), byte strings
//! (2), text strings (3), arrays (4), maps with text keys (5) and the booleans (7). Encoding is
//! deterministic (RFC 8949 §4.2.1); decoding is strict and accepts exactly what encoding produces,
//! with every rejection an `INVALID_ARGUMENT` naming the byte where the fault is.

use crate::error::{Error, Result};

/// Containers may nest this deep (as in `lib/cbor.ts`); deeper input is rejected, never recursed.
pub const MAX_DEPTH: usize = 64;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const SIMPLE_FALSE: u8 = 20;
const SIMPLE_TRUE: u8 = 21;
const INFO_INDEFINITE: u8 = 31;

// ---------------------------------------------------------------------------------------------
// Encoding

// Each value is built in one allocation: a listing page encodes thousands of maps, and
// allocating every head and key apart cost more than the system calls that found the objects.

pub fn unsigned(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_HEAD_LEN);
    put_head(&mut out, MAJOR_UNSIGNED, n);
    out
}

pub fn bytes(data: &[u8]) -> Vec<u8> {
    string(MAJOR_BYTES, data)
}

pub fn text(s: &str) -> Vec<u8> {
    string(MAJOR_TEXT, s.as_bytes())
}

pub fn boolean(value: bool) -> Vec<u8> {
    vec![(7 << 5) | if value { SIMPLE_TRUE } else { SIMPLE_FALSE }]
}

pub fn array(items: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_HEAD_LEN + items.iter().map(Vec::len).sum::<usize>());
    put_head(&mut out, MAJOR_ARRAY, items.len() as u64);
    items.iter().for_each(|item| out.extend_from_slice(item));
    out
}

/// A map from already encoded values; the entries are written in the order of their encoded keys:
/// for text keys, shorter first, then bytewise.
pub fn map(mut entries: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    entries.sort_unstable_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0)));
    let len = entries.iter().map(|(key, value)| 2 * MAX_HEAD_LEN + key.len() + value.len()).sum::<usize>();
    let mut out = Vec::with_capacity(MAX_HEAD_LEN + len);
    put_head(&mut out, MAJOR_MAP, entries.len() as u64);
    for (key, value) in &entries {
        put_head(&mut out, MAJOR_TEXT, key.len() as u64);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn string(major: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_HEAD_LEN + data.len());
    put_head(&mut out, major, data.len() as u64);
    out.extend_from_slice(data);
    out
}

/// The longest head: the initial byte and an 8-byte argument.
const MAX_HEAD_LEN: usize = 9;

/// Appends the initial byte and the shortest argument that holds `n`.
fn put_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let initial = major << 5;
    match n {
        0..=23 => out.push(initial | n as u8),
        24..=0xff => out.extend_from_slice(&[initial | 24, n as u8]),
        0x100..=0xffff => {
            out.push(initial | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(initial | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(initial | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A decoded data item and the byte offset where it starts, for error messages.
#[derive(Debug)]
pub struct Item {
    pub at: usize,
    pub value: Value,
}

#[derive(Debug)]
pub enum Value {
    Unsigned(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Item>),
    /// Keys in their (strictly increasing) wire order.
    Map(Vec<(String, Item)>),
    Bool(bool),
}

impl Value {
    /// What the value is, for "expected …, found …" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Unsigned(_) => "an unsigned integer",
            Value::Bytes(_) => "a byte string",
            Value::Text(_) => "a text string",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
            Value::Bool(_) => "a boolean",
        }
    }
}

pub fn invalid(message: String) -> Error {
    Error::invalid_argument(format!("CBOR decode: {message}"))
}

/// Decodes exactly one data item that spans all of `input`.
pub fn decode(input: &[u8]) -> Result<Item> {
    let mut reader = Reader { input, pos: 0 };
    let item = reader.item(0)?;
    if reader.remaining() > 0 {
        let (count, at) = (reader.remaining(), reader.pos);
        return Err(invalid(format!("{count} trailing byte(s) after the value, at byte {at}")));
    }
    Ok(item)
}

struct Head {
    major: u8,
    info: u8,
    arg: u64,
    start: usize,
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn item(&mut self, depth: usize) -> Result<Item> {
        let head = self.head()?;
        let start = head.start;
        let value = match head.major {
            MAJOR_UNSIGNED => Value::Unsigned(head.arg),
            MAJOR_NEGATIVE => return Err(invalid(format!("negative integer at byte {start} is not allowed"))),
            MAJOR_BYTES => Value::Bytes(self.take(head.arg)?.to_vec()),
            MAJOR_TEXT => Value::Text(self.text(head.arg, start)?),
            MAJOR_ARRAY => Value::Array(self.array(head.arg, start, depth)?),
            MAJOR_MAP => Value::Map(self.map(head.arg, start, depth)?),
            MAJOR_TAG => return Err(invalid(format!("tag {} at byte {start} is not allowed", head.arg))),
            _ => Value::Bool(simple(head.info, start)?),
        };
        Ok(Item { at: start, value })
    }

    fn head(&mut self) -> Result<Head> {
        let start = self.pos;
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        // Major type 7 (simple values, floats) has no argument we accept beyond `info` itself.
        let arg = if major == 7 { 0 } else { self.argument(info, start)? };
        Ok(Head { major, info, arg, start })
    }

    fn argument(&mut self, info: u8, start: usize) -> Result<u64> {
        match info {
            0..=23 => return Ok(u64::from(info)),
            INFO_INDEFINITE => return Err(invalid(format!("indefinite length at byte {start} is not allowed"))),
            28.. => return Err(invalid(format!("reserved additional information {info} at byte {start}"))),
            24..=27 => {}
        }
        let size = 1usize << (info - 24);
        let arg = self.take(size as u64)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let shortest_from = if size == 1 { 24 } else { 1u64 << (4 * size) };
        if arg < shortest_from {
            return Err(invalid(format!("{arg} at byte {start} is not in shortest form")));
        }
        Ok(arg)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            let (len, at) = (self.input.len(), self.pos);
            return Err(invalid(format!("unexpected end of input at byte {len} ({n} byte(s) needed at byte {at})")));
        }
        let taken = &self.input[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(taken)
    }

    fn text(&mut self, length: u64, start: usize) -> Result<String> {
        let raw = self.take(length)?;
        let text =
            std::str::from_utf8(raw).map_err(|_| invalid(format!("text string at byte {start} is not valid UTF-8")))?;
        Ok(text.to_owned())
    }

    fn array(&mut self, count: u64, start: usize, depth: usize) -> Result<Vec<Item>> {
        self.enter(count, start, depth)?;
        (0..count).map(|_| self.item(depth + 1)).collect()
    }

    fn map(&mut self, count: u64, start: usize, depth: usize) -> Result<Vec<(String, Item)>> {
        self.enter(count.saturating_mul(2), start, depth)?;
        let mut entries = Vec::with_capacity(count as usize);
        let mut previous_key: &[u8] = &[];
        for _ in 0..count {
            let key_start = self.pos;
            let key = self.key()?;
            let encoded_key = &self.input[key_start..self.pos];
            check_key_order(previous_key, encoded_key, &key, key_start)?;
            previous_key = encoded_key;
            entries.push((key, self.item(depth + 1)?));
        }
        Ok(entries)
    }

    fn key(&mut self) -> Result<String> {
        let head = self.head()?;
        if head.major != MAJOR_TEXT {
            return Err(invalid(format!("map key at byte {} is not a text string", head.start)));
        }
        self.text(head.arg, head.start)
    }

    /// Checks the depth, and that `min_items` one-byte items could still fit, before reading any.
    fn enter(&self, min_items: u64, start: usize, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(invalid(format!("container at byte {start} is nested deeper than {MAX_DEPTH} levels")));
        }
        if min_items > self.remaining() as u64 {
            let left = self.remaining();
            return Err(invalid(format!(
                "container at byte {start} declares more items than the {left} byte(s) left can hold"
            )));
        }
        Ok(())
    }
}

/// The first key has an empty predecessor, which sorts before every encoded key.
fn check_key_order(previous: &[u8], key_bytes: &[u8], key: &str, at: usize) -> Result<()> {
    match previous.cmp(key_bytes) {
        std::cmp::Ordering::Less => Ok(()),
        std::cmp::Ordering::Equal => Err(invalid(format!("duplicate map key {key:?} at byte {at}"))),
        std::cmp::Ordering::Greater => Err(invalid(format!("map key {key:?} at byte {at} is out of order"))),
    }
}

fn simple(info: u8, start: usize) -> Result<bool> {
    let what = match info {
        SIMPLE_FALSE => return Ok(false),
        SIMPLE_TRUE => return Ok(true),
        22 => "null".to_owned(),
        23 => "undefined".to_owned(),
        25..=27 => "a float".to_owned(),
        INFO_INDEFINITE => "a break outside an indefinite-length item".to_owned(),
        _ => format!("simple value (additional information {info})"),
    };
    Err(invalid(format!("{what} at byte {start} is not allowed")))
}
