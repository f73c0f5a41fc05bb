//! The input of the matrix algorithms: a [`Scenario`] (E, A, C, R and, for the banker, the
//! maximum claims), read from TOML or built in code, and validated once so the algorithms can
//! trust it.

use serde::Deserialize;
use std::fmt;

/// A dense matrix of resource counts, one row per process and one column per resource class,
/// stored row by row in one allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<u64>,
}

impl Matrix {
    /// A `rows × cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix { rows, cols, data: vec![0; rows * cols] }
    }

    /// Builds a matrix from its rows.
    ///
    /// # Panics
    /// If the rows do not all have `cols` entries (scenarios validate this first and report
    /// the row by name; see [`ScenarioError::RowLength`]).
    pub fn from_rows(cols: usize, rows: &[Vec<u64>]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * cols);
        for r in rows {
            assert_eq!(r.len(), cols, "matrix row of the wrong length");
            data.extend_from_slice(r);
        }
        Matrix { rows: rows.len(), cols, data }
    }

    /// Number of rows (processes).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (resource classes).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i`, the vector of process `i`.
    ///
    /// # Panics
    /// If `i >= self.rows()`.
    pub fn row(&self, i: usize) -> &[u64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutable.
    ///
    /// # Panics
    /// If `i >= self.rows()`.
    pub fn row_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The entry at row `i`, column `j`.
    ///
    /// # Panics
    /// If either index is out of range.
    pub fn get(&self, i: usize, j: usize) -> u64 {
        assert!(j < self.cols, "column out of range");
        self.data[i * self.cols + j]
    }

    /// The rows, in order.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &[u64]> + '_ {
        (0..self.rows).map(move |i| self.row(i))
    }
}

impl fmt::Debug for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter_rows()).finish()
    }
}

/// The scenario as written in a file: every number signed (so a negative one is reported by
/// row and column instead of failing as a type error) and every optional part optional.
///
/// ```toml
/// processes = ["P1", "P2", "P3"]                      # optional; default P1..Pn
/// resources = ["tape", "plotter", "scanner", "cd"]    # optional; default R1..Rm
/// existing = [4, 2, 3, 1]                             # E
/// available = [2, 1, 0, 0]                            # A, optional; default E - column sums of C
/// allocation = [[0, 0, 1, 0], [2, 0, 0, 1], [0, 1, 2, 0]]   # C
/// request = [[2, 0, 0, 1], [1, 0, 1, 0], [2, 1, 0, 0]]      # R, optional; default zeros
/// maximum = [[...], ...]                              # only for the banker's algorithm
/// ```
///
/// Turn it into a checked [`Scenario`] with [`Scenario::from_input`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInput {
    /// Process names; default `P1..Pn`.
    pub processes: Option<Vec<String>>,
    /// Resource class names; default `R1..Rm`.
    pub resources: Option<Vec<String>>,
    /// E: how many instances of each class exist.
    pub existing: Vec<i64>,
    /// A: how many are free; default E minus the column sums of the allocation.
    pub available: Option<Vec<i64>>,
    /// C: what each process holds.
    pub allocation: Vec<Vec<i64>>,
    /// R: what each process waits for, on top of what it holds; default none.
    pub request: Option<Vec<Vec<i64>>>,
    /// The maximum each process may ever hold (banker's algorithm only).
    pub maximum: Option<Vec<Vec<i64>>>,
}

/// Why a scenario was rejected. Every message names the row (process) and column (resource)
/// by name and by 1-based position, so the reader can find the number in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not valid TOML, or a field has the wrong type or an unknown name
    /// (the message carries the line and column in the file).
    #[error("{0}")]
    Syntax(String),
    /// A list of names does not have one name per row or column.
    #[error("`{list}` has {found} names but there are {expected} {what}")]
    NameCount {
        /// `processes` or `resources`.
        list: &'static str,
        /// Names given.
        found: usize,
        /// Rows or columns in the matrices.
        expected: usize,
        /// `processes` or `resource classes`.
        what: &'static str,
    },
    /// A name is empty or used twice.
    #[error("`{list}`: name {name:?} is empty or used twice")]
    BadName {
        /// `processes` or `resources`.
        list: &'static str,
        /// The offending name.
        name: String,
    },
    /// A matrix has a different number of rows than `allocation`.
    #[error("`{matrix}` has {found} rows but `allocation` has {expected} (one per process)")]
    RowCount {
        /// `request` or `maximum`.
        matrix: &'static str,
        /// Rows given.
        found: usize,
        /// Rows expected.
        expected: usize,
    },
    /// A matrix row does not have one entry per resource class.
    #[error(
        "`{matrix}` row {row} ({process}) has {found} entries but there are {expected} resource \
         classes: {column}"
    )]
    RowLength {
        /// `allocation`, `request` or `maximum`.
        matrix: &'static str,
        /// 1-based row.
        row: usize,
        /// The row's process.
        process: String,
        /// Entries given.
        found: usize,
        /// Entries expected.
        expected: usize,
        /// Which column is missing or extra, in words.
        column: String,
    },
    /// A vector does not have one entry per resource class.
    #[error("`{vector}` has {found} entries but there are {expected} resource classes: {column}")]
    VectorLength {
        /// `available` (the length of `existing` defines the classes).
        vector: &'static str,
        /// Entries given.
        found: usize,
        /// Entries expected.
        expected: usize,
        /// Which column is missing or extra, in words.
        column: String,
    },
    /// A count is negative.
    #[error("{place} is {value}: counts must not be negative")]
    Negative {
        /// Where, e.g. "`allocation` row 2 (P2), column 3 (scanner)".
        place: String,
        /// The number found.
        value: i64,
    },
    /// The processes hold more instances of a class than exist.
    #[error(
        "`allocation` column {column} ({resource}): the processes hold {allocated} but only \
         {existing} exist (exceeded at row {row} ({process}))"
    )]
    OverAllocated {
        /// 1-based column.
        column: usize,
        /// The class.
        resource: String,
        /// The column sum.
        allocated: u128,
        /// E for the class.
        existing: u64,
        /// 1-based row at which the running sum first exceeded E.
        row: usize,
        /// That row's process.
        process: String,
    },
    /// `available` disagrees with E minus what is allocated.
    #[error(
        "`available` column {column} ({resource}) is {available} but existing {existing} minus \
         allocated {allocated} is {expected}"
    )]
    AvailableMismatch {
        /// 1-based column.
        column: usize,
        /// The class.
        resource: String,
        /// A as given.
        available: u64,
        /// E.
        existing: u64,
        /// Column sum of the allocation.
        allocated: u64,
        /// E minus the allocation.
        expected: u64,
    },
    /// A process holds and requests together more than exist: it could never be satisfied.
    #[error(
        "`request` row {row} ({process}), column {column} ({resource}) is {request}: with the \
         {held} it holds that exceeds the {existing} that exist"
    )]
    RequestTooLarge {
        /// 1-based row.
        row: usize,
        /// The process.
        process: String,
        /// 1-based column.
        column: usize,
        /// The class.
        resource: String,
        /// R for the entry.
        request: u64,
        /// C for the entry.
        held: u64,
        /// E for the class.
        existing: u64,
    },
    /// A process holds more than its declared maximum.
    #[error(
        "`allocation` row {row} ({process}), column {column} ({resource}) is {allocation}, above \
         the process's `maximum` of {maximum}"
    )]
    AboveMaximum {
        /// 1-based row.
        row: usize,
        /// The process.
        process: String,
        /// 1-based column.
        column: usize,
        /// The class.
        resource: String,
        /// C for the entry.
        allocation: u64,
        /// The maximum claim.
        maximum: u64,
    },
    /// A maximum claim exceeds what exists: the process could never be satisfied.
    #[error(
        "`maximum` row {row} ({process}), column {column} ({resource}) is {maximum}, more than \
         the {existing} that exist"
    )]
    MaximumTooLarge {
        /// 1-based row.
        row: usize,
        /// The process.
        process: String,
        /// 1-based column.
        column: usize,
        /// The class.
        resource: String,
        /// The maximum claim.
        maximum: u64,
        /// E for the class.
        existing: u64,
    },
}

/// A checked deadlock-detection (or banker's) problem: `n` processes, `m` resource classes,
/// the vectors E (existing) and A (available), the matrices C (allocation) and R (request),
/// and optionally the maximum claims.
///
/// Invariants, checked on construction: every row has `m` entries; for every class `j`,
/// `A[j] + Σ C[i][j] == E[j]`; `C[i][j] + R[i][j] <= E[j]` (a request that could never be met
/// is an input error, not a deadlock); with a maximum, `C[i][j] <= max[i][j] <= E[j]`.
///
/// ```
/// use ipckit::deadlock::Scenario;
///
/// let s = Scenario::from_toml("existing = [1]\nallocation = [[1], [0]]\nrequest = [[0], [1]]")?;
/// assert_eq!(s.available(), &[0]);
/// assert_eq!(s.process_name(1), "P2");
/// # Ok::<(), ipckit::deadlock::ScenarioError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    processes: Vec<String>,
    resources: Vec<String>,
    existing: Vec<u64>,
    available: Vec<u64>,
    allocation: Matrix,
    request: Matrix,
    maximum: Option<Matrix>,
}

impl Scenario {
    /// Parses and checks a scenario written in TOML (see [`ScenarioInput`] for the format).
    ///
    /// # Errors
    /// [`ScenarioError::Syntax`] for bad TOML, a wrong type or an unknown key; any other
    /// variant for a scenario that does not add up (see [`Scenario::from_input`]).
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let input: ScenarioInput =
            toml::from_str(text).map_err(|e| ScenarioError::Syntax(one_line(&e.to_string())))?;
        Scenario::from_input(input)
    }

    /// Checks `input` and builds the scenario.
    ///
    /// # Errors
    /// A [`ScenarioError`] naming the first bad row and column: wrong lengths, negative
    /// counts, more allocated than exists, `available` not equal to E minus the allocation,
    /// a request that could never be met, an allocation above the maximum.
    pub fn from_input(input: ScenarioInput) -> Result<Scenario, ScenarioError> {
        Scenario::build(Parts {
            processes: input.processes,
            resources: input.resources,
            existing: &input.existing,
            available: input.available.as_deref(),
            allocation: &input.allocation,
            request: input.request.as_deref(),
            maximum: input.maximum.as_deref(),
        })
    }

    /// The checks of [`Scenario::from_input`], for signed (file) or unsigned (code) counts.
    fn build<T: Count>(parts: Parts<'_, T>) -> Result<Scenario, ScenarioError> {
        let m = parts.existing.len();
        let n = parts.allocation.len();
        let resources = names(parts.resources, m, "resources", "resource classes", "R")?;
        let processes = names(parts.processes, n, "processes", "processes", "P")?;
        let ctx = Names { processes: &processes, resources: &resources };

        let existing = ctx.vector("existing", parts.existing)?;
        let allocation = ctx.matrix("allocation", parts.allocation)?;
        let request = match parts.request {
            Some(r) => ctx.matrix("request", r)?,
            None => Matrix::zeros(n, m),
        };
        let maximum = parts.maximum.map(|x| ctx.matrix("maximum", x)).transpose()?;

        // Column sums: Σ C[i][j] <= E[j]; name the row where the sum first exceeds E.
        let mut allocated = vec![0u128; m];
        for (i, row) in allocation.iter_rows().enumerate() {
            for (j, &c) in row.iter().enumerate() {
                allocated[j] += u128::from(c);
                if allocated[j] > u128::from(existing[j]) {
                    let total: u128 =
                        allocation.iter_rows().map(|r| u128::from(r[j])).sum::<u128>();
                    return Err(ScenarioError::OverAllocated {
                        column: j + 1,
                        resource: resources[j].clone(),
                        allocated: total,
                        existing: existing[j],
                        row: i + 1,
                        process: processes[i].clone(),
                    });
                }
            }
        }
        // Fits in u64: allocated[j] <= existing[j].
        let free: Vec<u64> = (0..m).map(|j| existing[j] - allocated[j] as u64).collect();
        let available = match parts.available {
            None => free,
            Some(a) => {
                if a.len() != m {
                    return Err(ScenarioError::VectorLength {
                        vector: "available",
                        found: a.len(),
                        expected: m,
                        column: ctx.column_hint(a.len()),
                    });
                }
                let a = ctx.vector("available", a)?;
                for j in 0..m {
                    if a[j] != free[j] {
                        return Err(ScenarioError::AvailableMismatch {
                            column: j + 1,
                            resource: resources[j].clone(),
                            available: a[j],
                            existing: existing[j],
                            allocated: allocated[j] as u64,
                            expected: free[j],
                        });
                    }
                }
                a
            }
        };
        for (i, process) in processes.iter().enumerate() {
            for j in 0..m {
                let (c, r) = (allocation.get(i, j), request.get(i, j));
                if u128::from(c) + u128::from(r) > u128::from(existing[j]) {
                    return Err(ScenarioError::RequestTooLarge {
                        row: i + 1,
                        process: process.clone(),
                        column: j + 1,
                        resource: resources[j].clone(),
                        request: r,
                        held: c,
                        existing: existing[j],
                    });
                }
            }
        }
        if let Some(max) = &maximum {
            ctx.check_maximum(&existing, &allocation, max)?;
        }
        Ok(Scenario { processes, resources, existing, available, allocation, request, maximum })
    }

    /// Builds a scenario in code with default names and A = E minus the allocation.
    ///
    /// # Errors
    /// As [`Scenario::from_input`].
    pub fn new(
        existing: &[u64],
        allocation: &[Vec<u64>],
        request: &[Vec<u64>],
    ) -> Result<Scenario, ScenarioError> {
        Scenario::build(Parts {
            processes: None,
            resources: None,
            existing,
            available: None,
            allocation,
            request: Some(request),
            maximum: None,
        })
    }

    /// The same scenario with the maximum claims `maximum` (for the banker's algorithm).
    ///
    /// # Errors
    /// As [`Scenario::from_input`], for the maximum's rows.
    pub fn with_maximum(&self, maximum: &[Vec<u64>]) -> Result<Scenario, ScenarioError> {
        let ctx = Names { processes: &self.processes, resources: &self.resources };
        let max = ctx.matrix("maximum", maximum)?;
        ctx.check_maximum(&self.existing, &self.allocation, &max)?;
        Ok(Scenario { maximum: Some(max), ..self.clone() })
    }

    /// Number of processes `n`.
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Number of resource classes `m`.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// The process names, in row order.
    pub fn processes(&self) -> &[String] {
        &self.processes
    }

    /// The resource class names, in column order.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// Name of process `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn process_name(&self, i: usize) -> &str {
        &self.processes[i]
    }

    /// Name of resource class `j`.
    ///
    /// # Panics
    /// If `j` is out of range.
    pub fn resource_name(&self, j: usize) -> &str {
        &self.resources[j]
    }

    /// E: the instances of each class.
    pub fn existing(&self) -> &[u64] {
        &self.existing
    }

    /// A: the free instances of each class.
    pub fn available(&self) -> &[u64] {
        &self.available
    }

    /// C: what each process holds.
    pub fn allocation(&self) -> &Matrix {
        &self.allocation
    }

    /// R: what each process waits for (zeros when the input had no `request`).
    pub fn request(&self) -> &Matrix {
        &self.request
    }

    /// The maximum claims, if given.
    pub fn maximum(&self) -> Option<&Matrix> {
        self.maximum.as_ref()
    }
}

/// A count as written: signed in files (so a negative one can be reported where it is),
/// unsigned in code.
trait Count: Copy {
    /// The count, or the negative number found.
    fn to_count(self) -> Result<u64, i64>;
}

impl Count for i64 {
    fn to_count(self) -> Result<u64, i64> {
        u64::try_from(self).map_err(|_| self)
    }
}

impl Count for u64 {
    fn to_count(self) -> Result<u64, i64> {
        Ok(self)
    }
}

/// The unchecked parts of a scenario.
struct Parts<'a, T> {
    processes: Option<Vec<String>>,
    resources: Option<Vec<String>>,
    existing: &'a [T],
    available: Option<&'a [T]>,
    allocation: &'a [Vec<T>],
    request: Option<&'a [Vec<T>]>,
    maximum: Option<&'a [Vec<T>]>,
}

/// Names for error messages.
struct Names<'a> {
    processes: &'a [String],
    resources: &'a [String],
}

impl Names<'_> {
    fn vector<T: Count>(&self, name: &'static str, v: &[T]) -> Result<Vec<u64>, ScenarioError> {
        v.iter()
            .enumerate()
            .map(|(j, &x)| {
                x.to_count().map_err(|x| ScenarioError::Negative {
                    place: format!("`{name}` column {} ({})", j + 1, self.resources[j]),
                    value: x,
                })
            })
            .collect()
    }

    fn matrix<T: Count>(
        &self,
        name: &'static str,
        rows: &[Vec<T>],
    ) -> Result<Matrix, ScenarioError> {
        let (n, m) = (self.processes.len(), self.resources.len());
        if rows.len() != n {
            return Err(ScenarioError::RowCount { matrix: name, found: rows.len(), expected: n });
        }
        let mut data = Vec::with_capacity(n * m);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != m {
                return Err(ScenarioError::RowLength {
                    matrix: name,
                    row: i + 1,
                    process: self.processes[i].clone(),
                    found: row.len(),
                    expected: m,
                    column: self.column_hint(row.len()),
                });
            }
            for (j, &x) in row.iter().enumerate() {
                let x = match x.to_count() {
                    Ok(x) => x,
                    Err(x) => {
                        return Err(ScenarioError::Negative {
                            place: format!(
                                "`{name}` row {} ({}), column {} ({})",
                                i + 1,
                                self.processes[i],
                                j + 1,
                                self.resources[j]
                            ),
                            value: x,
                        });
                    }
                };
                data.push(x);
            }
        }
        Ok(Matrix { rows: n, cols: m, data })
    }

    /// `C[i][j] <= max[i][j] <= E[j]` everywhere.
    fn check_maximum(
        &self,
        existing: &[u64],
        allocation: &Matrix,
        max: &Matrix,
    ) -> Result<(), ScenarioError> {
        for i in 0..allocation.rows() {
            for (j, &e) in existing.iter().enumerate() {
                let (c, x) = (allocation.get(i, j), max.get(i, j));
                let (row, process) = (i + 1, self.processes[i].clone());
                let (column, resource) = (j + 1, self.resources[j].clone());
                if x > e {
                    return Err(ScenarioError::MaximumTooLarge {
                        row,
                        process,
                        column,
                        resource,
                        maximum: x,
                        existing: e,
                    });
                }
                if c > x {
                    return Err(ScenarioError::AboveMaximum {
                        row,
                        process,
                        column,
                        resource,
                        allocation: c,
                        maximum: x,
                    });
                }
            }
        }
        Ok(())
    }

    /// "column 4 (cd) is missing" or "column 5 is extra".
    fn column_hint(&self, found: usize) -> String {
        let m = self.resources.len();
        if found < m {
            format!("column {} ({}) is missing", found + 1, self.resources[found])
        } else {
            format!("column {} is extra", m + 1)
        }
    }
}

fn names(
    given: Option<Vec<String>>,
    expected: usize,
    list: &'static str,
    what: &'static str,
    prefix: &str,
) -> Result<Vec<String>, ScenarioError> {
    let Some(names) = given else {
        return Ok((1..=expected).map(|k| format!("{prefix}{k}")).collect());
    };
    if names.len() != expected {
        return Err(ScenarioError::NameCount { list, found: names.len(), expected, what });
    }
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        if name.trim().is_empty() || !seen.insert(name.as_str()) {
            return Err(ScenarioError::BadName { list, name: name.clone() });
        }
    }
    Ok(names)
}

/// TOML errors span several lines (a snippet of the file); keep the CLI's one-line rule.
fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty() && *l != "|").collect::<Vec<_>>().join(" ")
}
