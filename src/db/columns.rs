//! Reading columns through sqlx's `Any` driver, which hands some types over differently per
//! backend.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::DbError;

/// Reads a text column that may be NULL. MySQL returns `TEXT` columns as blobs through the
/// `Any` driver, so bytes are accepted too (and must be UTF-8).
pub fn text_column(row: &AnyRow, column: &str) -> Result<Option<String>, DbError> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(value) => Ok(value),
        Err(sqlx::Error::ColumnDecode { .. }) => {
            let bytes: Option<Vec<u8>> = row.try_get(column)?;
            bytes
                .map(|b| {
                    String::from_utf8(b).map_err(|e| {
                        DbError::Sql(sqlx::Error::Decode(
                            format!("column {column} is not UTF-8: {e}").into(),
                        ))
                    })
                })
                .transpose()
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads a float column that may be NULL. MySQL's `FLOAT` is single precision and arrives
/// as such through the `Any` driver; it is widened.
pub fn float_column(row: &AnyRow, column: &str) -> Result<Option<f64>, DbError> {
    match row.try_get::<Option<f64>, _>(column) {
        Ok(value) => Ok(value),
        Err(sqlx::Error::ColumnDecode { .. }) => {
            let single: Option<f32> = row.try_get(column)?;
            Ok(single.map(f64::from))
        }
        Err(other) => Err(other.into()),
    }
}

/// Like [`text_column`], for columns that are never NULL.
pub fn required_text_column(row: &AnyRow, column: &str) -> Result<String, DbError> {
    text_column(row, column)?.ok_or_else(|| {
        DbError::Sql(sqlx::Error::Decode(
            format!("column {column} is unexpectedly NULL").into(),
        ))
    })
}
