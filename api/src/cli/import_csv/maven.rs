//! The `maven` profile: the Maven Analytics "CRM Sales Opportunities" set —
//! `sales_pipeline.csv` (required), `products.csv` (required: list prices), `sales_teams.csv`
//! and `accounts.csv` — recognised by their headers.
//!
//! Mapping: a row with an engage date opens a deal at that date, 09:00 (stage `qualified` of
//! the default pipeline, amount = the product's list price, owner = the agent, title and
//! products = the product); `Engaging` moves to `presentation` an hour later; `Won` closes
//! with `DealWon { amount: close_value }` and `Lost` with `DealLost { reason: "unknown" }` on
//! the close date, 17:00. Reps come from `sales_teams.csv` (team = the regional office,
//! manager = the manager's id); customers from `accounts.csv` (industry = sector, region =
//! office location).
//!
//! The set's flaws and what the profile does with them:
//! - the product `GTXPro` is spelled `GTX Pro` in `products.csv`: names are compared without
//!   spaces;
//! - 500 `Prospecting` rows have no engage date: a deal cannot be placed in time without one,
//!   so they are skipped (and counted in the summary);
//! - 1,088 `Engaging` rows have no account: they go to the customer `unknown`;
//! - account names hold characters an entity id may not (`Gekko & Co`): ids are slugs;
//! - sectors are kept as written (`technolgy` included), as an analyst would see them.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use domain::money::Money;

use super::cells;
use super::story::{CustomerInfo, Dataset, Deal, Outcome, RepInfo, Stage, Step, UNKNOWN_CUSTOMER};
use super::table::{ReadOptions, Row, Table};
use super::{Problem, Problems};

const SOURCE: &str = "maven";

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Pipeline,
    Products,
    Teams,
    Accounts,
}

impl Role {
    fn of(t: &Table) -> Option<Role> {
        if t.has("opportunity_id") {
            Some(Role::Pipeline)
        } else if t.has("sales_price") {
            Some(Role::Products)
        } else if t.has("sales_agent") {
            Some(Role::Teams)
        } else if t.has("sector") {
            Some(Role::Accounts)
        } else {
            None
        }
    }
}

pub(super) fn read(tables: Vec<Table>, opts: &ReadOptions, problems: &mut Problems) -> Dataset {
    let mut data = Dataset {
        source: SOURCE.into(),
        ..Dataset::default()
    };
    let mut by_role: HashMap<Role, Table> = HashMap::new();
    for t in tables {
        let Some(role) = Role::of(&t) else {
            problems.push(at_header(
                &t.name,
                "is none of the Maven set's files (sales_pipeline, products, sales_teams, accounts)",
            ));
            continue;
        };
        if let Some(other) = by_role.insert(role, t) {
            problems.push(at_header(&other.name, "is a second file of the same kind"));
        }
    }
    let mut take = |role: Role| by_role.remove(&role);
    let (Some(mut pipeline), Some(mut products)) = (take(Role::Pipeline), take(Role::Products))
    else {
        problems.push(Problem {
            file: "(files)".into(),
            line: 0,
            column: None,
            why: "the maven profile needs sales_pipeline.csv and products.csv".into(),
        });
        return data;
    };
    if let Some(mut teams) = take(Role::Teams) {
        read_teams(&mut teams, &mut data, problems);
    }
    if let Some(mut accounts) = take(Role::Accounts) {
        read_accounts(&mut accounts, &mut data, problems);
    }
    let prices = read_prices(&mut products, &mut data, problems);
    read_pipeline(&mut pipeline, opts, &prices, &mut data, problems);
    data
}

fn at_header(file: &str, why: &str) -> Problem {
    Problem {
        file: file.into(),
        line: 1,
        column: None,
        why: why.into(),
    }
}

fn read_teams(t: &mut Table, data: &mut Dataset, problems: &mut Problems) {
    let [agent, manager, office] = match t.columns(
        ["sales_agent", "manager", "regional_office"],
        "sales_teams.csv",
    ) {
        Ok(c) => c,
        Err(p) => return problems.push(p),
    };
    t.for_each_row(problems, |r| {
        data.rows += 1;
        let name = r.required(agent)?;
        data.rep(&cells::slug(name), || RepInfo {
            name: name.to_string(),
            team: r.get(office).to_lowercase(),
            manager: r.opt(Some(manager)).map(cells::slug),
        });
        Ok(())
    });
}

fn read_accounts(t: &mut Table, data: &mut Dataset, problems: &mut Problems) {
    let [account, sector, office] =
        match t.columns(["account", "sector", "office_location"], "accounts.csv") {
            Ok(c) => c,
            Err(p) => return problems.push(p),
        };
    t.for_each_row(problems, |r| {
        data.rows += 1;
        let name = r.required(account)?;
        data.customer(&cells::slug(name), || CustomerInfo {
            name: name.to_string(),
            industry: r.opt(Some(sector)).map(str::to_string),
            region: r.opt(Some(office)).map(str::to_string),
            source: None,
        });
        Ok(())
    });
}

/// List prices by product name without spaces.
fn read_prices(
    t: &mut Table,
    data: &mut Dataset,
    problems: &mut Problems,
) -> HashMap<String, Money> {
    let mut prices = HashMap::new();
    let [product, price] = match t.columns(["product", "sales_price"], "products.csv") {
        Ok(c) => c,
        Err(p) => {
            problems.push(p);
            return prices;
        }
    };
    t.for_each_row(problems, |r| {
        data.rows += 1;
        prices.insert(
            r.required(product)?.replace(' ', ""),
            r.parse(price, cells::amount)?,
        );
        Ok(())
    });
    prices
}

fn read_pipeline(
    t: &mut Table,
    opts: &ReadOptions,
    prices: &HashMap<String, Money>,
    data: &mut Dataset,
    problems: &mut Problems,
) {
    let headers = [
        "opportunity_id",
        "sales_agent",
        "product",
        "account",
        "deal_stage",
        "engage_date",
        "close_date",
        "close_value",
    ];
    let [id, agent, product, account, stage, engage, close, value] =
        match t.columns(headers, "sales_pipeline.csv") {
            Ok(c) => c,
            Err(p) => return problems.push(p),
        };
    let day = |r: &Row, col: usize, hour: i64| -> Result<DateTime<Utc>, Problem> {
        let t = r.parse(col, |s| cells::time(s, &opts.date_formats, opts.utc_offset))?;
        Ok(t + Duration::hours(hour))
    };
    t.for_each_row(problems, |r| {
        data.rows += 1;
        let deal_stage = r.required(stage)?;
        if !matches!(deal_stage, "Prospecting" | "Engaging" | "Won" | "Lost") {
            return Err(r.problem(
                stage,
                format!("{deal_stage:?} is not Prospecting, Engaging, Won or Lost"),
            ));
        }
        if r.get(engage).is_empty() {
            *data
                .skipped
                .entry("prospects without an engage_date".into())
                .or_default() += 1;
            return Ok(());
        }
        let deal_id = r.parse(id, cells::entity_id)?;
        let name = r.required(agent)?;
        let rep = cells::slug(name);
        data.rep(&rep, || RepInfo {
            name: name.to_string(),
            team: SOURCE.into(),
            manager: None,
        });
        let customer = match r.get(account) {
            "" => {
                data.customer(UNKNOWN_CUSTOMER, || CustomerInfo {
                    name: "Unknown account".into(),
                    ..CustomerInfo::default()
                });
                UNKNOWN_CUSTOMER.to_string()
            }
            a => {
                let id = cells::slug(a);
                data.customer(&id, || CustomerInfo {
                    name: a.to_string(),
                    ..CustomerInfo::default()
                });
                id
            }
        };
        let product_name = r.required(product)?;
        let Some(&price) = prices.get(&product_name.replace(' ', "")) else {
            return Err(r.problem(product, format!("{product_name:?} is not in products.csv")));
        };
        let opened_at = day(r, engage, 9)?;
        let mut steps = Vec::new();
        let mut outcome = None;
        match deal_stage {
            "Engaging" => steps.push(Step {
                key: "stage/presentation".into(),
                at: opened_at + Duration::hours(1),
                origin: r.origin(),
                stage: Some(Stage::Open("presentation".into())),
                amount: None,
                reason: None,
            }),
            "Won" | "Lost" => {
                outcome = Some(Outcome {
                    won: deal_stage == "Won",
                    at: day(r, close, 17)?,
                    amount: r.parse(value, cells::amount)?,
                    reason: None,
                    origin: r.origin(),
                })
            }
            _ => {}
        }
        data.deals.push(Deal {
            id: deal_id,
            origin: r.origin(),
            opened_at,
            customer_id: customer,
            owner: rep,
            title: product_name.to_string(),
            amount: price,
            currency: None,
            stage: "qualified".into(),
            expected_close: None,
            products: Some(vec![product_name.to_string()]),
            steps,
            outcome,
        });
        Ok(())
    });
}
