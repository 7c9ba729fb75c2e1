//! `--mapping FILE.toml`: any other CRM's deals export, one row per deal, described by a
//! TOML file: which column holds which event field, value maps for stages, reasons and
//! reps, date formats, and optionally the pipeline and the dates each stage was entered.
//!
//! ```toml
//! source = "acme"                  # names the source in every event id: acme/deal/<id>/…
//! encoding = "gbk"                 # optional (`--encoding` wins)
//! delimiter = ";"                  # optional (`--delimiter` wins)
//! date_formats = ["%d.%m.%Y"]      # optional, tried before the built-in ones
//! utc_offset = "+08:00"            # optional: the offset of times written without one
//! currency = "CNY"                 # optional: when there is no currency column
//! team = "sales"                   # optional: the reps' team when there is no team column
//!
//! [columns]                        # event field = the header of the column holding it
//! deal_id = "商机编号"
//! title = "商机名称"               # optional (the deal id)
//! customer_id = "客户编号"          # optional: else customer_name as an id, else `unknown`
//! customer_name = "客户名称"        # optional
//! owner = "负责人"
//! amount = "金额"
//! stage = "阶段"
//! opened_at = "创建时间"
//! closed_at = "结单日期"            # needed by won and lost rows
//! lost_reason = "输单原因"          # optional; also won_reason, currency, team, industry, region
//!
//! [stages]                         # the stage column's values → a stage id, or won / lost
//! "初步接洽" = "qualified"
//! "赢单" = "won"
//! [reasons]                        # lost reasons as written → as recorded (else as written)
//! "价格太高" = "price"
//! [reps]                           # owners as written → rep id (else `cells::slug` of it)
//! "张三" = "zhangsan"
//! [stage_dates]                    # optional history: stage id → column of the date entered
//! presentation = "进入方案阶段时间"
//!
//! [[pipeline]]                     # optional: defined on import (else the one in force)
//! id = "qualified"
//! name = "初步接洽"
//! probability = 0.1
//! ```
//!
//! Without `[stages]`, a value's stage id is `cells::stage_id` of it, and `won`/`lost` (also
//! `closed_won`/`closed_lost`) are the outcomes. A value the map lacks, a stage outside the
//! given pipeline, or an owner the `[reps]` map lacks (when it has entries) refuses its row.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use domain::events::StageDef;
use serde::Deserialize;

use super::cells;
use super::story::{
    self, CustomerInfo, Dataset, Deal, Outcome, RepInfo, Stage, Step, UNKNOWN_CUSTOMER,
};
use super::table::{ReadOptions, Row, Table};
use super::{Problem, Problems};
use crate::cli::CliError;

/// A mapping file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub source: String,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub date_formats: Vec<String>,
    #[serde(default)]
    pub utc_offset: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    pub columns: Columns,
    #[serde(default)]
    pub stages: BTreeMap<String, String>,
    #[serde(default)]
    pub reasons: BTreeMap<String, String>,
    #[serde(default)]
    pub reps: BTreeMap<String, String>,
    #[serde(default)]
    pub stage_dates: BTreeMap<String, String>,
    #[serde(default)]
    pub pipeline: Vec<StageDef>,
}

/// Event field → column header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub deal_id: String,
    pub owner: String,
    pub amount: String,
    pub stage: String,
    pub opened_at: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub closed_at: Option<String>,
    #[serde(default)]
    pub lost_reason: Option<String>,
    #[serde(default)]
    pub won_reason: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub industry: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

impl Mapping {
    /// Reads and checks a mapping file; its mistakes are named with the file.
    pub fn load(path: &Path) -> Result<Mapping, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
        Mapping::parse(&text).map_err(|e| CliError::refused(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Mapping, String> {
        let m: Mapping = toml::from_str(text).map_err(|e| e.to_string())?;
        if !domain::envelope::is_entity_id(&m.source) || m.source.contains(':') {
            return Err(format!(
                "source {:?}: 1 to 64 characters of A-Z a-z 0-9 _ . -",
                m.source
            ));
        }
        if let Some(d) = &m.delimiter {
            super::parse_delimiter(d).map_err(|e| format!("delimiter: {e}"))?;
        }
        if let Some(o) = &m.utc_offset {
            offset(o)?;
        }
        for (value, target) in &m.stages {
            let known = m.pipeline.is_empty() || m.pipeline.iter().any(|s| &s.id == target);
            if !known && !matches!(target.as_str(), "won" | "lost") {
                return Err(format!(
                    "stages: {value:?} maps to {target:?}, which is not in [[pipeline]]"
                ));
            }
        }
        Ok(m)
    }

    /// The file-level settings, unless the command line gave them.
    pub(super) fn apply_to(&self, opts: &mut ReadOptions) {
        if opts.delimiter.is_none() {
            opts.delimiter = self
                .delimiter
                .as_deref()
                .and_then(|d| super::parse_delimiter(d).ok());
        }
        if opts.encoding.is_none() {
            opts.encoding.clone_from(&self.encoding);
        }
        opts.date_formats.extend(self.date_formats.iter().cloned());
        if let Some(o) = self.utc_offset.as_deref().and_then(|o| offset(o).ok()) {
            opts.utc_offset = o;
        }
    }

    /// Reads every file with this layout (several files: e.g. one export a month).
    pub(super) fn read(
        &self,
        tables: Vec<Table>,
        opts: &ReadOptions,
        problems: &mut Problems,
    ) -> Dataset {
        let mut data = Dataset {
            source: self.source.clone(),
            pipeline: (!self.pipeline.is_empty()).then(|| self.pipeline.clone()),
            ..Dataset::default()
        };
        let first = self
            .pipeline
            .first()
            .map_or("qualified", |s| s.id.as_str())
            .to_string();
        let mut seen: HashMap<String, (std::sync::Arc<str>, u64)> = HashMap::new();
        for mut t in tables {
            let cols = match Cols::find(self, &t) {
                Ok(c) => c,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            t.for_each_row(problems, |r| {
                data.rows += 1;
                let deal = self.deal(r, &cols, opts, &first, &mut data)?;
                if let Some((file, line)) =
                    seen.insert(deal.id.clone(), (std::sync::Arc::clone(r.table), r.line))
                {
                    let why = format!("deal {} already appears in {file}, line {line}", deal.id);
                    return Err(r.problem(cols.deal_id, why));
                }
                data.deals.push(deal);
                Ok(())
            });
        }
        data
    }

    fn stage(&self, r: &Row, column: usize) -> Result<Stage, Problem> {
        let value = r.required(column)?;
        let target = if self.stages.is_empty() {
            cells::stage_id(value)
        } else {
            match self.stages.get(value) {
                Some(t) => t.clone(),
                None => {
                    return Err(r.problem(
                        column,
                        format!("{value:?} is not in the mapping's [stages]"),
                    ))
                }
            }
        };
        Ok(match target.as_str() {
            "won" | "closed_won" => Stage::Won,
            "lost" | "closed_lost" => Stage::Lost,
            _ if !self.pipeline.is_empty() && !self.pipeline.iter().any(|s| s.id == target) => {
                return Err(r.problem(
                    column,
                    format!("stage {target:?} is not in the mapping's [[pipeline]]"),
                ))
            }
            _ => Stage::Open(target),
        })
    }

    fn deal(
        &self,
        r: &Row,
        c: &Cols,
        opts: &ReadOptions,
        first: &str,
        data: &mut Dataset,
    ) -> Result<Deal, Problem> {
        let time =
            |col: usize| r.parse(col, |s| cells::time(s, &opts.date_formats, opts.utc_offset));
        let id = r.parse(c.deal_id, cells::entity_id)?;
        let owner = r.required(c.owner)?;
        let rep = match self.reps.get(owner) {
            Some(rep) => rep.clone(),
            None if self.reps.is_empty() => cells::slug(owner),
            None => {
                return Err(r.problem(c.owner, format!("{owner:?} is not in the mapping's [reps]")))
            }
        };
        let team = r
            .opt(c.team)
            .or(self.team.as_deref())
            .unwrap_or(self.source.as_str())
            .to_string();
        data.rep(&rep, || RepInfo {
            name: owner.to_string(),
            team,
            manager: None,
        });
        let name = r.opt(c.customer_name);
        let customer = match (r.opt(c.customer_id), name) {
            (Some(_), _) => r.parse(c.customer_id.unwrap_or_default(), cells::entity_id)?,
            (None, Some(n)) => cells::slug(n),
            (None, None) => UNKNOWN_CUSTOMER.to_string(),
        };
        data.customer(&customer, || CustomerInfo {
            name: name.map_or_else(|| customer.clone(), str::to_string),
            industry: r.opt(c.industry).map(str::to_string),
            region: r.opt(c.region).map(str::to_string),
            source: None,
        });
        let current = self.stage(r, c.stage)?;
        let amount = r.parse(c.amount, cells::amount)?;
        let reason = |col: Option<usize>| {
            r.opt(col).map(|v| {
                self.reasons
                    .get(v)
                    .cloned()
                    .unwrap_or_else(|| v.to_string())
            })
        };
        let (won_reason, lost_reason) = (reason(c.won_reason), reason(c.lost_reason));
        let outcome = match &current {
            Stage::Open(_) => None,
            closed => {
                let Some(col) = c.closed_at else {
                    return Err(r.problem(
                        c.stage,
                        "a won or lost deal needs [columns] closed_at in the mapping",
                    ));
                };
                let won = *closed == Stage::Won;
                Some(Outcome {
                    won,
                    at: time(col)?,
                    amount,
                    reason: if won {
                        won_reason.clone()
                    } else {
                        lost_reason.clone()
                    },
                    origin: r.origin(),
                })
            }
        };
        let mut steps = Vec::new();
        for (stage, col) in &c.stage_dates {
            if r.get(*col).is_empty() {
                continue;
            }
            steps.push(Step {
                key: format!("entered/{stage}"),
                at: time(*col)?,
                origin: r.origin(),
                stage: Some(match stage.as_str() {
                    "won" => Stage::Won,
                    "lost" => Stage::Lost,
                    s => Stage::Open(s.to_string()),
                }),
                amount: None,
                reason: None,
            });
        }
        let opened = time(c.opened_at)?;
        let opening = story::take_opening(&mut steps);
        story::date_final_close(&mut steps, outcome.as_ref());
        let (stage, opened_at) = match (opening, &current) {
            (Some((stage, s)), _) => (stage, s.at.min(opened)),
            (None, Stage::Open(s)) if steps.is_empty() => (s.clone(), opened),
            (None, _) => (first.to_string(), opened),
        };
        Ok(Deal {
            origin: r.origin(),
            opened_at,
            customer_id: customer,
            owner: rep,
            title: r.opt(c.title).unwrap_or(id.as_str()).to_string(),
            id,
            amount,
            currency: r
                .opt(c.currency)
                .map(str::to_uppercase)
                .or_else(|| self.currency.clone()),
            stage,
            expected_close: None,
            products: None,
            steps,
            outcome,
        })
    }
}

/// The column indexes of a table for a mapping.
struct Cols {
    deal_id: usize,
    owner: usize,
    amount: usize,
    stage: usize,
    opened_at: usize,
    title: Option<usize>,
    customer_id: Option<usize>,
    customer_name: Option<usize>,
    closed_at: Option<usize>,
    lost_reason: Option<usize>,
    won_reason: Option<usize>,
    currency: Option<usize>,
    team: Option<usize>,
    industry: Option<usize>,
    region: Option<usize>,
    stage_dates: Vec<(String, usize)>,
}

impl Cols {
    fn find(m: &Mapping, t: &Table) -> Result<Cols, Problem> {
        let c = &m.columns;
        let [deal_id, owner, amount, stage, opened_at] = t.columns(
            [&c.deal_id, &c.owner, &c.amount, &c.stage, &c.opened_at].map(String::as_str),
            "the mapping",
        )?;
        let optional = |h: &Option<String>| -> Result<Option<usize>, Problem> {
            match h {
                None => Ok(None),
                Some(h) => t.columns([h.as_str()], "the mapping").map(|[i]| Some(i)),
            }
        };
        let mut stage_dates = Vec::new();
        for (stage, header) in &m.stage_dates {
            let [i] = t.columns([header.as_str()], "the mapping's [stage_dates]")?;
            stage_dates.push((stage.clone(), i));
        }
        Ok(Cols {
            deal_id,
            owner,
            amount,
            stage,
            opened_at,
            title: optional(&c.title)?,
            customer_id: optional(&c.customer_id)?,
            customer_name: optional(&c.customer_name)?,
            closed_at: optional(&c.closed_at)?,
            lost_reason: optional(&c.lost_reason)?,
            won_reason: optional(&c.won_reason)?,
            currency: optional(&c.currency)?,
            team: optional(&c.team)?,
            industry: optional(&c.industry)?,
            region: optional(&c.region)?,
            stage_dates,
        })
    }
}

/// `+08:00` → the offset.
fn offset(s: &str) -> Result<chrono::FixedOffset, String> {
    let bad = || format!("utc_offset {s:?} must look like +08:00 or -05:00");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let secs =
        h.parse::<i32>().map_err(|_| bad())? * 3600 + m.parse::<i32>().map_err(|_| bad())? * 60;
    chrono::FixedOffset::east_opt(sign * secs).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the README's "Coming from another CRM" section, so that it stays right.
    fn readme_example() -> String {
        let readme = include_str!("../../../../README.md");
        let section = &readme[readme
            .find("## Coming from another CRM")
            .expect("the section")..];
        let start = section.find("```toml\n").expect("a toml block") + 8;
        section[start..start + section[start..].find("```").expect("its end")].to_string()
    }

    #[test]
    fn the_readme_example_is_a_valid_mapping() {
        let m = Mapping::parse(&readme_example()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.source, "xsy");
        assert_eq!(m.stages.get("赢单").map(String::as_str), Some("won"));
        assert_eq!(m.pipeline.len(), 2);
        assert_eq!(offset("+08:00").map(|o| o.local_minus_utc()), Ok(8 * 3600));
    }

    #[test]
    fn mistakes_in_a_mapping_are_named() {
        let example = readme_example();
        let e = Mapping::parse(
            &example.replace("\"方案报价\" = \"quote\"", "\"方案报价\" = \"offer\""),
        )
        .unwrap_err();
        assert!(e.contains("\"offer\", which is not in [[pipeline]]"), "{e}");
        let e = Mapping::parse(&example.replace("deal_id =", "deal_idd =")).unwrap_err();
        assert!(e.contains("deal_idd"), "{e}");
        let e = Mapping::parse(&example.replace("+08:00", "8h")).unwrap_err();
        assert!(e.contains("utc_offset"), "{e}");
    }
}
