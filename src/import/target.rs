//! The target of an imported model that predicts a number: its name, and its training
//! distribution (range, quartiles, decile bins) from the CSV that names the features, for the
//! web form's range bar, the predicted-value counters and the drift of the outputs.

use super::{ImportError, Sample};
use crate::model::TargetSchema;
use std::path::Path;

/// The target column `name` of the CSV at `path` (whose rows are `sample`), as the manifest's
/// `[target]`. Every cell must be a finite number, and there must be at least two.
pub(super) fn target_from_csv(
    name: &str,
    path: &Path,
    sample: &Sample,
) -> Result<TargetSchema, ImportError> {
    let Some(cells) = sample.get(name) else {
        return Err(ImportError::Features(format!(
            "{}: --target names '{name}', which is not a column of its header",
            path.display()
        )));
    };
    let mut values = Vec::with_capacity(cells.len());
    for (row, cell) in cells.iter().enumerate() {
        match cell.parse::<f64>() {
            Ok(value) if value.is_finite() => values.push(value),
            _ => {
                // The header is line 1.
                return Err(ImportError::Features(format!(
                    "{}:{}: column '{name}' (the target): expected a finite number, got '{cell}'",
                    path.display(),
                    row + 2
                )));
            }
        }
    }
    if values.len() < 2 {
        return Err(ImportError::Features(format!(
            "{}: the target '{name}' needs at least two rows for its training range",
            path.display()
        )));
    }
    Ok(crate::train::regression::target_schema(name, &values))
}
