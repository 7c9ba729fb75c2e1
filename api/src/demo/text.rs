//! The demo's own words: what a rep writes after a call and why a deal was lost. Each text is
//! given once in English and once in Chinese, the way a bilingual team writes its notes, so the
//! replay reads naturally in either language of the dashboard. The texts are picked with a
//! random source of their own, so adding or changing one leaves every figure of the demo as it
//! was.

use rand::rngs::StdRng;
use rand::RngExt;

/// `(english, 中文)` summaries per activity kind.
const SUMMARIES: [(&str, &[(&str, &str)]); 6] = [
    (
        "call",
        &[
            (
                "Walked the CFO through the budget",
                "与财务总监逐项核对预算",
            ),
            ("Asked who else signs off", "确认还有哪些人参与审批"),
            ("Checked the rollout dates", "核对上线时间表"),
            (
                "Answered questions on the contract terms",
                "解答合同条款的疑问",
            ),
        ],
    ),
    (
        "email",
        &[
            ("Sent the revised proposal", "发送修改后的方案"),
            ("Shared two reference customers", "提供两家参考客户"),
            ("Followed up on the open questions", "跟进尚未答复的问题"),
        ],
    ),
    (
        "meeting",
        &[
            ("Demo for the finance team", "为财务团队做产品演示"),
            ("Workshop on the data migration", "数据迁移研讨会"),
        ],
    ),
    (
        "visit",
        &[
            ("On-site visit with the plant manager", "拜访工厂负责人"),
            ("Met the new IT director", "拜会新任信息总监"),
        ],
    ),
    ("sms", &[("Confirmed tomorrow's meeting", "确认明天的会议")]),
    (
        "note",
        &[
            (
                "The champion is moving to another division",
                "内部支持者将调往其他部门",
            ),
            ("Budget frozen until next quarter", "预算冻结至下季度"),
        ],
    ),
];

/// `(english, 中文)` outcomes of an activity.
const OUTCOMES: [(&str, &str); 5] = [
    ("next step agreed", "约定下一步"),
    ("no answer", "无人接听"),
    ("sent material", "已发资料"),
    ("meeting booked", "已约会议"),
    ("needs approval", "待审批"),
];

/// `(english, 中文)` notes on a lost deal per reason.
const LOST_NOTES: [(&str, &str, &str); 5] = [
    (
        "price",
        "Their quote was about 15% below ours; the CFO would not move",
        "对手报价比我们低约 15%，财务总监不肯让步",
    ),
    (
        "timing",
        "The project slipped to next year",
        "项目推迟到明年",
    ),
    (
        "no_budget",
        "The budget went to the new plant instead",
        "预算转投新工厂",
    ),
    (
        "no_decision",
        "The committee never met to decide",
        "决策委员会始终没有开会",
    ),
    (
        "feature_gap",
        "They need offline mode, which we do not have",
        "客户需要离线模式，我们尚不支持",
    ),
];

/// One text in both languages.
fn both(en: &str, zh: &str) -> String {
    format!("{en} / {zh}")
}

/// A summary and an outcome for an activity of `kind`.
pub(super) fn activity(rng: &mut StdRng, kind: &str) -> (String, String) {
    let options = SUMMARIES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(SUMMARIES[0].1, |(_, o)| *o);
    let (en, zh) = options[rng.random_range(0..options.len())];
    let (oen, ozh) = OUTCOMES[rng.random_range(0..OUTCOMES.len())];
    (both(en, zh), both(oen, ozh))
}

/// The note a rep writes on a deal lost for `reason`.
pub(super) fn lost_note(reason: &str) -> String {
    let (_, en, zh) = LOST_NOTES
        .iter()
        .find(|(r, _, _)| *r == reason)
        .copied()
        .unwrap_or(LOST_NOTES[0]);
    both(en, zh)
}
