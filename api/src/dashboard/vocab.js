// dealtrail dashboard: the data's own words in the page's language — event types, stage names
// (the pipeline's `name`), lost reasons, activity kinds and a replay step's one-line summary.
// English shows what the log says; 中文 translates what it knows and keeps the rest as written
// (a stage or reason an organisation made up itself has no translation to look up).

const ZH_TYPES = {
  PipelineDefined: '定义销售流程', RepJoined: '销售入职', RepLeft: '销售离职', TargetSet: '设定目标',
  ReportingCurrencySet: '设定报表币种', ExchangeRateSet: '设定汇率', CustomerRegistered: '登记客户',
  CustomerUpdated: '更新客户', CustomerClaimed: '领取客户', CustomerAssigned: '分配客户', CustomerReleased: '客户退回公海',
  ComplaintFiled: '客户投诉', ComplaintResolved: '投诉解决', NpsRecorded: '记录 NPS', CustomerChurned: '客户流失',
  ActivityLogged: '记录活动', LeadCaptured: '获得线索', LeadQualified: '线索确认', LeadDisqualified: '线索无效',
  LeadConverted: '线索转化', DealOpened: '新建商机', DealStageChanged: '推进阶段', DealAmountChanged: '修改金额',
  DealReassigned: '商机转交', QuoteIssued: '发出报价', CompetitorNoted: '发现竞争对手', DealWon: '赢单', DealLost: '输单',
  DealReopened: '重新打开', PaymentScheduled: '回款计划', PaymentReceived: '收到回款', SpendRecorded: '记录投放费用',
  TokenIssued: '签发令牌', TokenRevoked: '吊销令牌',
};
const ZH_STAGES = { qualified: '需求确认', presentation: '方案演示', quote: '报价', negotiation: '商务谈判', contract: '签约' };
const ZH_REASONS = {
  price: '价格', timing: '时机', no_budget: '没有预算', no_decision: '迟迟未决策', feature_gap: '功能不满足',
  best_fit: '最合适', 'best fit': '最合适', no_follow_up: '未跟进', rep_left: '销售离职',
};
const ZH_KINDS = { call: '电话', email: '邮件', sms: '短信', meeting: '会议', visit: '拜访', note: '备注' };
const ZH_DIRECTIONS = { inbound: '呼入', outbound: '呼出' };

/** Stage id → the pipeline's name, learnt once per page load from the pipeline report. */
let STAGE_NAMES = null;
async function loadStageNames() {
  if (STAGE_NAMES) return;
  try {
    const p = await api('/v1/reports/pipeline');
    STAGE_NAMES = Object.fromEntries(p.stages.map((s) => [s.stage, s.name || s.stage]));
  } catch (_) { STAGE_NAMES = {}; }
}

const inZh = () => lang === 'zh';
/** An event type as the page's language names it. */
const typeName = (ty) => (inZh() && ZH_TYPES[ty]) || ty;
/** A stage id as the page's language names it: the pipeline's name, or its translation. */
const stageName = (id) => (id == null ? '—' : (inZh() && ZH_STAGES[id]) || (STAGE_NAMES && STAGE_NAMES[id]) || id);
const reasonName = (r) => (r == null ? '—' : (inZh() && ZH_REASONS[r]) || r);
const kindName = (k) => (inZh() && ZH_KINDS[k]) || k;

/**
 * A deal event's one-line summary in the page's language, from its `data`; `fallback` (the
 * server's English summary) when the page is in English or the event's data is not at hand.
 */
function stepSummary(type, d, fallback) {
  if (!inZh() || !d) return fallback;
  const amt = (x) => num(x, 2);
  switch (type) {
    case 'DealOpened': return `新建「${d.title}」，阶段 ${stageName(d.stage)}，金额 ${amt(d.amount)}，负责人 ${d.owner}`;
    case 'DealStageChanged': return `${stageName(d.from)} → ${stageName(d.to)}`;
    case 'DealAmountChanged': return `金额改为 ${amt(d.amount)}`;
    case 'DealReassigned': return `由 ${d.from} 转交给 ${d.to}`;
    case 'QuoteIssued': return `报价 ${d.quote_id}：${amt(d.amount)}${d.discount_pct != null ? `（折扣 ${d.discount_pct}%）` : ''}`;
    case 'CompetitorNoted': return `竞争对手：${d.competitor}`;
    case 'ActivityLogged': return `${d.rep} 的${kindName(d.kind)}${d.summary ? `：${d.summary}` : ''}`;
    case 'DealWon': return `赢单，金额 ${amt(d.amount)}`;
    case 'DealLost': return `输单：${reasonName(d.reason)}${d.competitor ? `（输给 ${d.competitor}）` : ''}`;
    case 'DealReopened': return `在 ${stageName(d.stage)} 阶段重新打开`;
    case 'PaymentScheduled': return `回款 ${d.installment_id}：${amt(d.amount)}，${d.due} 到期`;
    case 'PaymentReceived': return `收到回款 ${amt(d.amount)}`;
    default: return fallback;
  }
}

/** What a timeline line says of event `e` beyond its type (customer and lead pages). */
function eventWhat(e) {
  const d = e.data || {};
  if (d.kind) return `${kindName(d.kind)}${d.direction ? ` · ${(inZh() && ZH_DIRECTIONS[d.direction]) || d.direction}` : ''}${d.summary ? ': ' + d.summary : ''}`;
  if (d.to && d.from) return e.type === 'DealStageChanged' ? `${stageName(d.from)} → ${stageName(d.to)}` : `${d.from} → ${d.to}`;
  if (d.reason) return reasonName(d.reason);
  if (d.amount != null) return money(d.amount, e.type === 'DealOpened' ? d.currency || 'CNY' : null);
  return d.summary || '';
}
