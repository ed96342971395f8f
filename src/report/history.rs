//! Reading a run's `history.csv` back: one column per name, with the empty
//! cells (error columns between evaluations, optimiser columns on row 0)
//! kept as `None`.

use std::path::Path;

use crate::error::{Error, Result};

/// A parsed `history.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// Where it was read from (for error messages).
    pub origin: String,
    /// Column names, in file order.
    pub columns: Vec<String>,
    /// Rows of cells (`None` where empty).
    pub rows: Vec<Vec<Option<f64>>>,
}

impl History {
    /// Read `path`; an error names the file, line and column of a bad cell.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse the text of a history file (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut lines = text.lines();
        let columns: Vec<String> = lines
            .next()
            .ok_or_else(|| Error::Parse {
                path: origin.into(),
                reason: "empty file (no header)".into(),
            })?
            .split(',')
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for (k, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != columns.len() {
                return Err(Error::Parse {
                    path: format!("{origin} line {}", k + 2),
                    reason: format!("{} cells, header has {}", cells.len(), columns.len()),
                });
            }
            let row = cells
                .iter()
                .zip(&columns)
                .map(|(c, name)| {
                    if c.is_empty() {
                        Ok(None)
                    } else {
                        c.parse().map(Some).map_err(|_| Error::Parse {
                            path: format!("{origin} line {}", k + 2),
                            reason: format!("column `{name}`: `{c}` is not a number"),
                        })
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push(row);
        }
        Ok(History {
            origin: origin.into(),
            columns,
            rows,
        })
    }

    /// Index of the column `name`, if present.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Index of the column `name`; an error names it when it is missing.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.index(name).ok_or_else(|| Error::Parse {
            path: self.origin.clone(),
            reason: format!("no `{name}` column"),
        })
    }

    /// `(x, y)` pairs of two columns over the rows where both are present.
    pub fn pairs(&self, x: &str, y: &str) -> Result<Vec<(f64, f64)>> {
        let (ix, iy) = (self.column(x)?, self.column(y)?);
        Ok(self
            .rows
            .iter()
            .filter_map(|r| Some((r[ix]?, r[iy]?)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_empty_cells_and_names_bad_ones() {
        let h = History::parse("iter,time_s,loss,l2_abs\n0,0.1,2,0.5\n1,0.2,1,\n", "h").unwrap();
        assert_eq!(h.rows.len(), 2);
        assert_eq!(h.pairs("iter", "l2_abs").unwrap(), vec![(0.0, 0.5)]);
        assert_eq!(h.pairs("time_s", "loss").unwrap().len(), 2);
        let e = History::parse("iter,loss\n0,x\n", "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("loss"), "{e}");
        let e = History::parse("iter,loss\n0\n", "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 cells"), "{e}");
        assert!(History::parse("", "h").is_err());
        assert!(h.pairs("iter", "nope").is_err());
    }
}
