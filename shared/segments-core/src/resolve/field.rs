//! Which column or key/value entry a field names: the one lookup that
//! segment conditions and field previews share.

use super::{id, unknown};
use crate::catalog::{ColumnType, MetricDef, ObjectDef, SourceDef};
use crate::error::ValidationError;
use crate::model::{EventProperty, PropertyField};
use crate::sql::{Ident, is_identifier};

/// A field resolved against the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef {
    /// A column of the row, with its type.
    Column(Ident, ColumnType),
    /// The entries named `key` of a key/value array column.
    Keyed { array: Ident, key: String },
}

fn error(path: String, message: String) -> ValidationError {
    ValidationError { path, message }
}

/// A property-focus field of `def`; `path` is the condition's (`...g0`).
pub fn property_field(
    def: &ObjectDef,
    field: &PropertyField,
    path: &str,
) -> Result<FieldRef, ValidationError> {
    match field {
        PropertyField::Custom(key) => {
            let Some(custom) = &def.custom else {
                return Err(error(
                    format!("{path}.type"),
                    format!("{} has no custom properties", def.table),
                ));
            };
            if !is_identifier(key) {
                return Err(error(
                    format!("{path}.key"),
                    format!(
                        "{key:?} is not a valid key (letters, digits and _, not starting with a digit)"
                    ),
                ));
            }
            Ok(FieldRef::Keyed {
                array: id(custom),
                key: key.clone(),
            })
        }
        PropertyField::RowMetric(key) => match def.metrics.get(key) {
            Some(MetricDef { row: Some(col), .. }) => {
                let ty = def.columns.get(col).copied().unwrap_or(ColumnType::Float64);
                Ok(FieldRef::Column(id(col), ty))
            }
            Some(_) => Err(error(
                format!("{path}.key"),
                format!("metric {key:?} is an aggregate; use a metric group"),
            )),
            None => Err(error(
                format!("{path}.key"),
                unknown("metric", key, def.metrics.keys()),
            )),
        },
        PropertyField::Column(key) => match def.column_type(key) {
            Some(ty) => Ok(FieldRef::Column(id(key), ty)),
            None => Err(error(
                format!("{path}.key"),
                unknown(&format!("field of {}", def.table), key, def.columns.keys()),
            )),
        },
    }
}

/// A column of an event row, or a (dotted) key of its properties.
pub fn event_property(
    source: &SourceDef,
    prop: &EventProperty,
    path: &str,
) -> Result<FieldRef, ValidationError> {
    let name = &prop.name;
    if let Some(ty) = source.column_type(name)
        && is_identifier(name)
    {
        return Ok(FieldRef::Column(Ident::trusted(name), ty));
    }
    let Some(props) = &source.properties else {
        return Err(error(
            format!("{path}.property"),
            format!("{} has no column or property {name:?}", source.table),
        ));
    };
    if !name.split('.').all(is_identifier) {
        return Err(error(
            format!("{path}.{}", prop.wire),
            format!(
                "{name:?} is not a valid property name (letters, digits and _, not starting with a digit)"
            ),
        ));
    }
    Ok(FieldRef::Keyed {
        array: id(props),
        key: name.clone(),
    })
}
