//! The health trainer dataset (version 1): every entity and code list of the data
//! standard as types that can only hold valid values, the rules that span records, and
//! the values derived from them. Nothing here knows about files, SQL or HTTP.

pub mod catalogue;
pub mod codes;
pub mod field;
pub mod measure;
pub mod record;
pub mod rules;
pub mod types;

pub use field::{FieldError, FieldSource};
pub use record::{Entity, Field, FieldKind, Record, Value, parse_record};
pub use rules::{ClientBundle, RuleSettings, Violation};
