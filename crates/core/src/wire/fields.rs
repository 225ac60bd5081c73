//! Typed access to a decoded CBOR tree: each value carries the path of the field it came from
//! (`IngestResult.receipt.size_bytes`) and its byte offset, so every error names both.

use crate::error::Result;

use super::cbor::{invalid, Item, Value};

/// A map type on the wire: how it encodes, and how it reads its fields back.
pub trait MapCodec: Sized {
    /// The name errors use for the top-level value.
    const NAME: &'static str;
    fn encode(&self) -> Vec<u8>;
    /// Takes the fields it knows; any left over are rejected afterwards.
    fn decode(fields: &mut Fields) -> Result<Self>;
}

/// One decoded value and where it came from.
pub struct Field {
    path: String,
    item: Item,
}

impl Field {
    pub fn root(name: &str, item: Item) -> Self {
        Field { path: name.to_owned(), item }
    }

    fn wrong_type(&self, expected: &str) -> crate::error::Error {
        let (path, at, found) = (&self.path, self.item.at, self.item.value.kind());
        invalid(format!("{path} at byte {at} must be {expected}, not {found}"))
    }

    /// An error about this value that is not about its CBOR type.
    pub fn rejected(&self, reason: &str) -> crate::error::Error {
        invalid(format!("{} at byte {}: {reason}", self.path, self.item.at))
    }

    pub fn unsigned(self) -> Result<u64> {
        match self.item.value {
            Value::Unsigned(n) => Ok(n),
            _ => Err(self.wrong_type("an unsigned integer")),
        }
    }

    pub fn boolean(self) -> Result<bool> {
        match self.item.value {
            Value::Bool(b) => Ok(b),
            _ => Err(self.wrong_type("a boolean")),
        }
    }

    pub fn text(self) -> Result<String> {
        match self.item.value {
            Value::Text(s) => Ok(s),
            _ => Err(self.wrong_type("a text string")),
        }
    }

    /// Text that `parse` accepts; `expected` says what it should have been.
    pub fn parsed_text<T>(self, expected: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T> {
        let Value::Text(ref s) = self.item.value else { return Err(self.wrong_type("a text string")) };
        parse(s).ok_or_else(|| self.rejected(&format!("{s:?} is not {expected}")))
    }

    /// A byte string of exactly `N` bytes.
    pub fn byte_array<const N: usize>(self) -> Result<[u8; N]> {
        let Value::Bytes(ref data) = self.item.value else { return Err(self.wrong_type("a byte string")) };
        let len = data.len();
        data.as_slice().try_into().map_err(|_| self.rejected(&format!("{len} bytes, expected {N}")))
    }

    /// A byte string of any length.
    pub fn bytes(self) -> Result<Vec<u8>> {
        match self.item.value {
            Value::Bytes(data) => Ok(data),
            _ => Err(self.wrong_type("a byte string")),
        }
    }

    pub fn array(self) -> Result<Vec<Field>> {
        let Value::Array(items) = self.item.value else { return Err(self.wrong_type("an array")) };
        let path = self.path;
        let fields = items.into_iter().enumerate();
        Ok(fields.map(|(i, item)| Field { path: format!("{path}[{i}]"), item }).collect())
    }

    /// Decodes a map type, rejecting fields it does not know.
    pub fn decode<T: MapCodec>(self) -> Result<T> {
        let mut fields = self.fields()?;
        let value = T::decode(&mut fields)?;
        fields.reject_leftovers()?;
        Ok(value)
    }

    fn fields(self) -> Result<Fields> {
        let Value::Map(entries) = self.item.value else { return Err(self.wrong_type("a map")) };
        Ok(Fields { path: self.path, at: self.item.at, entries })
    }
}

/// The entries of one map, taken out one by one by name.
pub struct Fields {
    path: String,
    at: usize,
    entries: Vec<(String, Item)>,
}

impl Fields {
    pub fn required(&mut self, key: &str) -> Result<Field> {
        match self.optional(key) {
            Some(field) => Ok(field),
            None => Err(invalid(format!("{} (map at byte {}) lacks the field {key:?}", self.path, self.at))),
        }
    }

    pub fn optional(&mut self, key: &str) -> Option<Field> {
        let index = self.entries.iter().position(|(name, _)| name == key)?;
        let (_, item) = self.entries.remove(index);
        Some(Field { path: format!("{}.{key}", self.path), item })
    }

    fn reject_leftovers(self) -> Result<()> {
        match self.entries.first() {
            None => Ok(()),
            Some((key, item)) => {
                Err(invalid(format!("{} has no field {key:?} (its value is at byte {})", self.path, item.at)))
            }
        }
    }
}
