//! `explore merge`: shard outputs (in one directory or several) combined
//! into one sweep: every points table of every directory, refused when the
//! directories hold results of different specs or when two tables disagree
//! on a point, ordered as a single-process run orders them, and written with
//! its fronts, plots and report. Points the spec asks for that no shard
//! produced are listed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::outputs::write_outputs;
use super::store::{self, SpecLock, Store};
use super::{PointKey, SweepError, point_keys};
use explore_results::outcomes::{self, Outcomes};
use explore_results::points::{self, PointRecord};
use explore_spec::Spec;

/// What [`merge`] wrote.
#[derive(Debug)]
pub struct Merged {
    pub points: Vec<PointRecord>,
    /// Points the spec asks for that no table holds (unfinished shards,
    /// or targets a strategy cannot reach).
    pub missing: Vec<PointKey>,
    pub output: PathBuf,
}

/// Merges the sweep outputs in `dirs` into `output`.
pub fn merge(dirs: &[PathBuf], output: &Path) -> Result<Merged, SweepError> {
    let stores = dirs
        .iter()
        .map(|d| Store::existing(d.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &stores[0];
    let yaml_path = first.spec_yaml();
    let yaml = std::fs::read_to_string(&yaml_path).map_err(store::io(&yaml_path))?;
    let spec = Spec::parse(&yaml, &yaml_path)?;
    let lock = SpecLock::of(&spec);
    for s in &stores {
        let theirs: SpecLock = store::read_json(&s.lock_json())?;
        if let Some(field) = lock.first_difference(&theirs) {
            return Err(SweepError::MergeMismatch {
                dir: s.dir().to_path_buf(),
                first: first.dir().to_path_buf(),
                field,
            });
        }
    }

    // Every row once; a point two tables disagree on is refused.
    let mut rows: Vec<(PointKey, PointRecord, PathBuf)> = Vec::new();
    for s in &stores {
        for table in s.points_tables()? {
            for r in points::read(&table)? {
                let key = r.key();
                match rows.iter().find(|(k, _, _)| *k == key) {
                    None => rows.push((key, r, table.clone())),
                    Some((_, kept, _)) if same(kept, &r) => {}
                    Some((_, _, other)) => {
                        return Err(SweepError::MergeConflict {
                            point: key.dir_name(),
                            schedule: key.schedule.name(),
                            a: other.clone(),
                            b: table.clone(),
                        });
                    }
                }
            }
        }
    }
    // In the order a single-process run produces them; points the spec no
    // longer lists come last, in the order found.
    let expected = point_keys(&spec);
    let rank: HashMap<String, usize> = expected
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("{k:?}"), i))
        .collect();
    rows.sort_by_key(|(k, _, _)| rank.get(&format!("{k:?}")).copied().unwrap_or(usize::MAX));
    let missing: Vec<PointKey> = expected
        .into_iter()
        .filter(|k| !rows.iter().any(|(r, _, _)| r == k))
        .collect();

    let out = Store::open(output.to_path_buf(), &spec)?;
    store::write_text(&out.spec_yaml(), &yaml)?;
    // The per-layer rows each point's chart reads and its per-image
    // outcomes (checked against its row) travel with it.
    for (key, record, table) in &rows {
        let from_dir = table
            .parent()
            .map(|d| d.join("points").join(key.dir_name()));
        let to_dir = out.point_dir(key);
        for name in [store::LAYERS, outcomes::FILE] {
            let from = from_dir.as_ref().map(|d| d.join(name));
            if name == outcomes::FILE
                && let Some(o) = from.as_deref().map(Outcomes::read).transpose()?.flatten()
            {
                o.check_against(record, from.as_deref().expect("read from it"))?;
            }
            if let Some(from) = from.filter(|f| f.exists() && *f != to_dir.join(name)) {
                std::fs::create_dir_all(&to_dir).map_err(store::io(&to_dir))?;
                let text = std::fs::read_to_string(&from).map_err(store::io(&from))?;
                store::write_text(&to_dir.join(name), &text)?;
            }
        }
    }
    let points: Vec<PointRecord> = rows.into_iter().map(|(_, r, _)| r).collect();
    points::write(&out.points_csv(), &points)?;
    write_outputs(&out, &yaml, &points, &spec.report)?;
    Ok(Merged {
        points,
        missing,
        output: output.to_path_buf(),
    })
}

/// Equal rows (`NaN` equal to `NaN`: an unmeasured cell in both).
fn same(a: &PointRecord, b: &PointRecord) -> bool {
    format!("{a:?}") == format!("{b:?}")
}
