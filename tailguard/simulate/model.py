"""The event generator: customers → users → sessions → tasks → turns, vectorised per chunk.

Every level is a flat numpy array with a parent index (``np.repeat`` down the tree), so a chunk of
a few hundred customers costs a few dozen numpy calls whatever its number of events. Randomness
comes from one generator per chunk (seeded by ``[seed, chunk]``), so output is byte-identical for
a seed and chunks can be written as they are produced.

Context accumulation (the cost-per-resolved-task article): turn *k* of a session sends the system
prompt plus every earlier turn's new content and visible answer plus its own new content; so input
grows turn by turn and a
long session pays for an ever larger prompt. The previous prompt is a prefix of the next one, so a
follow-up turn reads it from the provider's prompt cache when the cache is warm (same model, gap
under the five-minute TTL, and the customer's hit propensity). Token convention: ``input_tokens``
includes cache reads and writes, ``output_tokens`` includes reasoning (OpenTelemetry GenAI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailguard.simulate import catalog as cat
from tailguard.simulate import params
from tailguard.simulate.columns import KIND_ESC as KIND_ESC
from tailguard.simulate.columns import KIND_GUARD as KIND_GUARD
from tailguard.simulate.columns import KIND_LLM as KIND_LLM
from tailguard.simulate.columns import KIND_OUT as KIND_OUT
from tailguard.simulate.columns import KIND_PRIO, US, concat, excl_cumsum, to_us
from tailguard.simulate.columns import KIND_RETR as KIND_RETR
from tailguard.simulate.columns import KIND_TOOL as KIND_TOOL
from tailguard.simulate.columns import KINDS as KINDS
from tailguard.simulate.columns import Chunk as Chunk
from tailguard.simulate.columns import llm_cost as llm_cost
from tailguard.simulate.columns import unit_cost as unit_cost
from tailguard.simulate.enforce import enforce
from tailguard.simulate.population import SHAPE_BIT, Population

CACHE_BLOCK = 128
CACHE_TTL_S = 300.0
CACHE_MIN = 1024
_TOKEN_PROBS = np.linspace(0.0, 1.0, 41)
#: median minutes a human spends on an escalated task (lognormal, sigma 0.8: mostly a quick
#: review of the product's draft, sometimes a long takeover; clipped to 0.5-60 minutes)
ESC_MEDIAN_MIN = 6.0
#: at most this share of a (non-planted) customer's tasks fail, however hard its work
MAX_FAIL_SHARE = 0.9
#: an agent task's own input on its first step (the ticket, the files it reads): the Azure code
#: trace's context x this (median about 4k tokens); 2026 coding and support agents load whole
#: files and threads, not the 2023 trace's completions
AGENT_TASK_SCALE = 6.0
#: a tool result an agent step appends (a file, a web page, a CRM record): Azure conversation
#: context x this (median about 1.2k tokens)
AGENT_TOOL_RESULT_SCALE = 5.0
#: an agent step's output (its reasoning text and the tool call): the Azure code trace's generated
#: tokens x this (median about 130 tokens)
AGENT_STEP_OUTPUT_SCALE = 8.0
#: log-spread of the users' activity within a customer (lognormal weights, mean 1 per customer):
#: with the spread across customers, the top 5% of a month's active users hold 50-70% of its
#: spend and the median user sits near the bottom decile (the eight-KPI framework, §03); hand-set
USER_SIGMA = 1.5
#: a user is active on at most this share of days (weekday-weighted); a heavier user's weight
#: is not used (its sessions a day stay a person's, so no organic heavy user looks like the
#: high_frequency shape; at 2x a day the p99 pro user crossed its share of the cap)
MAX_DAY_SHARE = 0.85
#: share of a workload's sessions on its second feature (research_agent, assistant, kb_search):
#: the two agent surfaces carry most of the spend between them, neither alone half of it
FEATURE_SPLIT = 0.45
#: how much of a light user's agent work is chat instead (see ``_sessions``; hand-set)
LIGHT_USER_CHAT = 1.0
#: high_frequency (automation): HF_SESSIONS + Poisson(HF_SESSIONS) sessions per active
#: user-day, about 5x a person's 2.2 (was 30: thirteen planted customers then made over half of
#: a month's agent tasks; the diagnosis needs 3x)
HF_SESSIONS = 6


def _sample(rng: np.random.Generator, table: list[int], n: int) -> np.ndarray:
    """Draw ``n`` values from a quantile table by inverse-CDF interpolation."""
    return np.interp(rng.random(n), _TOKEN_PROBS, np.asarray(table, dtype=float))


def _seg_arange(counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(c)`` for each count: the index of each child within its parent."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=1)
    c[:, -1] = 1.0
    return (rng.random((len(p), 1)) > c).sum(axis=1)


def _has(pop: Population, shape: str, c: np.ndarray) -> np.ndarray:
    return (pop.shapes[c] & SHAPE_BIT[shape]) > 0


@dataclass
class _Users:
    """Principals of the chunk's customers and the days each is active."""

    c: np.ndarray  # chunk-local customer of each user
    ids: list[str]  # user_id strings
    ud_u: np.ndarray  # (user, day) pairs on which the user is active
    ud_d: np.ndarray
    weight: np.ndarray  # per user: activity relative to the customer's mean user


@dataclass
class Sessions:
    user: np.ndarray
    day: np.ndarray
    c: np.ndarray
    g: np.ndarray
    start: np.ndarray  # seconds from the window's start
    wl: np.ndarray  # workload class
    feat: np.ndarray
    model: np.ndarray
    f: np.ndarray  # drift fraction: 0 at the window's start, ``trend`` at its end
    long: np.ndarray  # the customer carries long_sessions

    @property
    def n(self) -> int:
        return len(self.user)


@dataclass
class _Tasks:
    s: np.ndarray  # session of each task
    wl: np.ndarray
    g: np.ndarray
    f: np.ndarray
    nturn: np.ndarray  # planned turns (a task whose attempts all fail ends early)

    @property
    def n(self) -> int:
        return len(self.s)


@dataclass
class _Turns:
    t: np.ndarray  # task of each turn
    s: np.ndarray
    g: np.ndarray
    nf: np.ndarray  # failed attempts before the one that answered
    dead: np.ndarray  # every attempt failed: the task ends on this turn
    mag: np.ndarray  # the customer is a failure magnet
    nturn: np.ndarray  # turns per task (after early ends)
    s_nturn: np.ndarray  # turns per session
    in_sess: np.ndarray  # index of the turn within its session
    first_of_task: np.ndarray
    last_in_task: np.ndarray
    wl: np.ndarray

    @property
    def n(self) -> int:
        return len(self.t)


@dataclass
class _Tools:
    k: np.ndarray  # turn of each tool call
    tool: np.ndarray
    ntool: np.ndarray  # tool calls per turn
    results: np.ndarray  # tokens of the results, per turn (appended to the next turn)
    fan: np.ndarray  # per turn: the customer fans out

    @property
    def n(self) -> int:
        return len(self.k)


@dataclass
class _Prompts:
    """What each turn sends and gets back (tokens), on which model."""

    inp: np.ndarray
    visible: np.ndarray
    reasoning: np.ndarray
    model: np.ndarray
    sys_prompt: np.ndarray


@dataclass
class _Attempts:
    k: np.ndarray  # turn of each attempt (retries included)
    attempt: np.ndarray  # 1-based
    err: np.ndarray
    out: np.ndarray
    reasoning: np.ndarray
    model: np.ndarray
    inp: np.ndarray
    lat: np.ndarray
    off_ms: np.ndarray  # from the turn's first attempt
    llm_ms: np.ndarray  # per turn: the attempts' latency and backoff


def generate(
    pop: Population, cust: np.ndarray, rng: np.random.Generator, *, trend: float = 1.0
) -> Chunk:
    """All events of the customers ``cust`` (global indices, ascending).

    ``trend`` (0..1) scales the cost-per-resolved-task article's drift over the window: routine
    traffic moves to cheaper models while tasks take more turns and resolve a little less often, so
    cost per call falls
    while cost per resolved task rises.
    """
    users = _users(pop, cust, rng)
    sess = _sessions(pop, cust, users, rng, trend)
    tasks = _tasks(pop, sess, rng)
    turns = _turns(pop, sess, tasks, rng)
    tools = _tool_calls(pop, turns, rng)
    prompts = _prompts(pop, sess, turns, tools, rng)
    gap = _think_time(turns, rng)
    cr, cw = _prompt_cache(pop, turns, prompts, gap, rng)
    att = _attempts(turns, prompts, rng)
    tc_lat, k_start, dur_s, retr_ms = _schedule(sess, turns, tools, att, gap, rng)
    outcome, t_ts = _outcomes(pop, tasks, turns, k_start, dur_s, rng)
    parts = _columns(
        sess, tasks, turns, tools, att, cr, cw, tc_lat, k_start, retr_ms, outcome, t_ts, rng
    )
    return _finish(pop, cust, users, sess, tasks, parts)


def _users(pop: Population, cust: np.ndarray, rng: np.random.Generator) -> _Users:
    """Users of each customer and the days each is active (weekdays busier, none before signup)."""
    days = pop.days
    n_users = pop.users[cust]
    user_c = np.repeat(np.arange(len(cust)), n_users)
    user_k = _seg_arange(n_users)
    ids = [f"{pop.customer_id[cust[c]]}.u{k:03d}" for c, k in zip(user_c, user_k, strict=True)]
    nu = len(user_c)
    weekday = (np.arange(days) + pop.start.weekday()) % 7
    w = np.where(weekday < 5, 1.0, 0.4)
    w = w / w.mean()
    # per-user weight: a few heavy users carry most of a workspace's use (the eight-KPI
    # framework: the top 5% of users consume 50-70%); normalised to a mean of 1 within each
    # customer, so the customer's own activity (and its place in the tail) is unchanged
    wt = rng.lognormal(0.0, USER_SIGMA, nu)
    wt /= (np.bincount(user_c, weights=wt) / np.maximum(n_users, 1))[user_c]
    p_user = np.minimum(pop.user_active[cust][user_c] * wt, MAX_DAY_SHARE)
    active = rng.random((nu, days)) < np.minimum(p_user[:, None] * w[None, :], 1.0)
    active &= np.arange(days)[None, :] >= pop.signup_day[cust][user_c][:, None]
    ud_u, ud_d = np.nonzero(active)
    return _Users(user_c, ids, ud_u, ud_d, wt)


def _sessions(
    pop: Population, cust: np.ndarray, users: _Users, rng: np.random.Generator, trend: float
) -> Sessions:
    """Sessions per active user-day, their start, workload, feature and routed model."""
    ud_u, ud_d = users.ud_u, users.ud_d
    hf_ud = _has(pop, "high_frequency", cust[users.c[ud_u]])
    ns = 1 + rng.binomial(4, 0.3, len(ud_u))
    ns[hf_ud] = HF_SESSIONS + rng.poisson(HF_SESSIONS, int(hf_ud.sum()))
    s_user = np.repeat(ud_u, ns)
    s_day = np.repeat(ud_d, ns)
    s_c = users.c[s_user]
    s_g = cust[s_c]
    nsess = len(s_user)
    hour = np.mod(rng.normal(14.0 - pop.tz_hours[s_g], 3.2), 24.0)
    s_hf = _has(pop, "high_frequency", s_g)
    hour[s_hf] = rng.uniform(0.0, 24.0, int(s_hf.sum()))
    s_start = (s_day * 86400 + hour * 3600).astype(np.float64)

    s_wl = _categorical(rng, pop.mix[s_g])
    # a light user chats; the agents are run by the customer's heavy users (the eight-KPI
    # framework's power users): an agent session of a user lighter than the customer's mean
    # becomes a chat with probability LIGHT_USER_CHAT x (1 - weight)
    light = (s_wl == 1) & (rng.random(nsess) < LIGHT_USER_CHAT * (1.0 - users.weight[s_user]))
    s_wl[light] = 0
    s_rh = _has(pop, "reasoning_heavy", s_g)
    s_feat = s_wl * 2 + (rng.random(nsess) < FEATURE_SPLIT)
    s_feat[s_rh & (s_wl == 1)] = 3  # research_agent
    s_model = _categorical(rng, cat.ROUTES[pop.tier[s_g], s_wl])
    s_f = trend * s_day / max(1, pop.days - 1)
    cheaper = rng.random(nsess) < 1.0 - (1.0 - 0.55 * s_f) * (1.0 - pop.p_budget[s_g])
    s_model[cheaper] = cat.CHEAPER[s_model[cheaper]]
    return Sessions(
        s_user, s_day, s_c, s_g, s_start, s_wl, s_feat, s_model, s_f,
        _has(pop, "long_sessions", s_g),
    )  # fmt: skip


def _tasks(pop: Population, sess: Sessions, rng: np.random.Generator) -> _Tasks:
    """Tasks per session and the turns each is planned to take (long sessions, fan-out, drift)."""
    nsess = sess.n
    s_wl, s_long = sess.wl, sess.long
    nt = 1 + ((s_wl == 0) & (rng.random(nsess) < 0.25)) + ((s_wl == 2) & (rng.random(nsess) < 0.2))
    nt = nt.astype(np.int64)
    nl = int(s_long.sum())
    # long sessions: many tasks in one conversation, each a little longer than usual (so that
    # per-task metrics such as retries per task stay near the base population's)
    nt[s_long] = np.where(
        s_wl[s_long] == 1, 3 + rng.binomial(2, 0.5, nl), 5 + rng.binomial(4, 0.5, nl)
    )
    t_s = np.repeat(np.arange(nsess), nt)
    ntask = len(t_s)
    t_wl = s_wl[t_s]
    t_long = s_long[t_s]
    nturn = np.select(
        [t_wl == 0, t_wl == 1],
        [1 + rng.binomial(4, 0.4, ntask), 2 + rng.binomial(5, 0.5, ntask)],
        1 + rng.binomial(3, 0.3, ntask),
    )
    nlt = int(t_long.sum())
    nturn[t_long] = np.select(
        [t_wl[t_long] == 0, t_wl[t_long] == 1],
        [2 + rng.binomial(4, 0.5, nlt), 3 + rng.binomial(4, 0.5, nlt)],
        2 + rng.binomial(3, 0.5, nlt),
    )
    # tool fan-out: agents that loop take more steps per task
    t_g = sess.g[t_s]
    t_fan = _has(pop, "tool_fanout", t_g) & (t_wl == 1)
    nturn[t_fan] = 4 + rng.binomial(4, 0.5, int(t_fan.sum()))
    # the cost-per-resolved-task article: handle time drifts from about four turns towards seven
    t_f = sess.f[t_s]
    nturn += rng.binomial(4, 0.6 * t_f) * (t_wl != 2)
    return _Tasks(t_s, t_wl, t_g, t_f, nturn)


def _turns(pop: Population, sess: Sessions, tasks: _Tasks, rng: np.random.Generator) -> _Turns:
    """Turns and their failed attempts (retries); a task whose every attempt fails ends there."""
    k_t = np.repeat(np.arange(tasks.n), tasks.nturn)
    k_s = tasks.s[k_t]
    k_g = sess.g[k_s]
    nk = len(k_t)
    mag = _has(pop, "failure_magnet", k_g)
    p_first = np.where(mag, 0.35, 0.05)
    p_next = np.where(mag, 0.6, 0.3)
    max_att = np.where(mag, 6, 3)
    nf = np.zeros(nk, dtype=np.int64)
    alive = np.ones(nk, dtype=bool)
    for a in range(6):
        fail = alive & (a < max_att) & (rng.random(nk) < (p_first if a == 0 else p_next))
        nf += fail
        alive = fail
    dead = nf >= max_att
    keep = excl_cumsum(dead.astype(np.int64), tasks.nturn) == 0
    k_t, k_s, k_g, nf, dead, mag = k_t[keep], k_s[keep], k_g[keep], nf[keep], dead[keep], mag[keep]
    nturn = np.bincount(k_t, minlength=tasks.n)
    k_in_task = _seg_arange(nturn)
    s_nturn = np.bincount(k_s, minlength=sess.n)
    return _Turns(
        t=k_t,
        s=k_s,
        g=k_g,
        nf=nf,
        dead=dead,
        mag=mag,
        nturn=nturn,
        s_nturn=s_nturn,
        in_sess=_seg_arange(s_nturn),
        first_of_task=k_in_task == 0,
        last_in_task=k_in_task == nturn[k_t] - 1,
        wl=sess.wl[k_s],
    )


def _tool_calls(pop: Population, turns: _Turns, rng: np.random.Generator) -> _Tools:
    """Tool calls per turn (agent steps call 1-2, chat turns sometimes one; fan-out many)."""
    nk = turns.n
    fan = _has(pop, "tool_fanout", turns.g)
    ntool = np.zeros(nk, dtype=np.int64)
    ag = (turns.wl == 1) & ~turns.last_in_task
    ntool[ag] = 1 + (rng.random(int(ag.sum())) < 0.25)
    ch = turns.wl == 0
    ntool[ch] = rng.random(int(ch.sum())) < 0.1
    agf = ag & fan
    ntool[agf] = 5 + rng.binomial(6, 0.5, int(agf.sum()))
    chf = ch & fan
    ntool[chf] = 2 + rng.binomial(2, 0.5, int(chf.sum()))
    ntool[turns.dead] = 0
    tc_k = np.repeat(np.arange(nk), ntool)
    ntc = len(tc_k)
    tc_tool = _categorical(rng, np.broadcast_to(cat.TOOL_P, (ntc, len(cat.TOOL_P))))
    tc_tokens = _sample(rng, params.AZURE_CONV_CONTEXT, ntc) * np.where(
        fan[tc_k], 1.0, np.where(turns.wl[tc_k] == 1, AGENT_TOOL_RESULT_SCALE, 0.3)
    )
    results = np.bincount(tc_k, weights=tc_tokens, minlength=nk)
    return _Tools(tc_k, tc_tool, ntool, results, fan)


def _prompts(
    pop: Population, sess: Sessions, turns: _Turns, tools: _Tools, rng: np.random.Generator
) -> _Prompts:
    """Token sizes per turn from the real traces, the model of each turn, and the accumulated
    context (the cost-per-resolved-task article: turn *k* sends everything said before it)."""
    nk = turns.n
    k_wl, first_of_task, k_g = turns.wl, turns.first_of_task, turns.g
    over = _has(pop, "oversized_prompts", k_g)
    rh = _has(pop, "reasoning_heavy", k_g)
    conv = _sample(rng, params.AZURE_CONV_CONTEXT, nk)
    new = np.select(
        [k_wl == 0, k_wl == 1],
        [
            np.where(first_of_task, 0.6, 0.12) * conv,
            np.where(first_of_task, AGENT_TASK_SCALE, 0.0)
            * _sample(rng, params.AZURE_CODE_CONTEXT, nk),
        ],
        0.1 * conv,
    )
    attach = over & first_of_task
    new[attach] += 1.5 * _sample(rng, params.MOONCAKE_INPUT, int(attach.sum()))
    # retrieved context: the long-context trace, bounded by top-k x chunk size (16k tokens)
    retrieved = np.where(
        k_wl == 2,
        np.minimum(
            np.where(first_of_task, 0.55, 0.3) * _sample(rng, params.MOONCAKE_INPUT, nk), 16000.0
        ),
        0.0,
    )
    prev_results = np.zeros(nk)
    same = turns.in_sess > 0
    prev_results[1:] = tools.results[:-1]
    new = new + retrieved + np.where(same, prev_results, 0.0)
    # oversized prompts: everything the customer sends is several times the usual size
    new[over] *= rng.uniform(4.0, 8.0, int(over.sum()))
    new = np.round(new)

    visible = np.select(
        [k_wl == 0, k_wl == 1],
        [
            _sample(rng, params.AZURE_CONV_GENERATED, nk),
            np.where(
                turns.last_in_task,
                _sample(rng, params.AZURE_CONV_GENERATED, nk),
                AGENT_STEP_OUTPUT_SCALE * _sample(rng, params.AZURE_CODE_GENERATED, nk),
            ),
        ],
        _sample(rng, params.MOONCAKE_OUTPUT, nk),
    )
    visible = np.maximum(1.0, np.round(visible))
    k_model = sess.model[turns.s].copy()
    # the first task of an agent session is planned on o3-mini; later tasks reuse the plan
    # context (so a long session does not switch models, and lose its cache, on every task)
    planner = (k_wl == 1) & first_of_task & (turns.in_sess == 0)
    k_model[planner] = cat.PLANNER
    k_model[rh] = cat.DEEP
    reasoning = np.zeros(nk)
    reasoning[planner] = 2.0 * _sample(rng, params.AZURE_CONV_GENERATED, int(planner.sum()))
    reasoning[rh] = _sample(rng, params.AZURE_CONV_GENERATED, int(rh.sum())) * rng.uniform(
        20.0, 40.0, int(rh.sum())
    )
    reasoning = np.round(reasoning)

    sys_prompt = cat.SYSTEM_PROMPT[sess.feat][turns.s].astype(np.float64)
    prior = excl_cumsum(new + visible, turns.s_nturn)
    return _Prompts(sys_prompt + prior + new, visible, reasoning, k_model, sys_prompt)


def _think_time(turns: _Turns, rng: np.random.Generator) -> np.ndarray:
    """Seconds between a turn and the one before it in its session (agent steps follow at once)."""
    think = np.clip(rng.lognormal(np.log(25.0), 1.0, turns.n), 2.0, 1800.0)
    same = turns.in_sess > 0
    return np.where(same, np.where((turns.wl == 1) & ~turns.first_of_task, 0.2, think), 0.0)


def _prompt_cache(
    pop: Population, turns: _Turns, prompts: _Prompts, gap: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cache-read and cache-write tokens per turn: a warm follow-up reads its whole previous
    prompt, else a long system prompt may be read; Anthropic writes what it did not read."""
    nk = turns.n
    inp, k_model, sys_prompt = prompts.inp, prompts.model, prompts.sys_prompt
    same = turns.in_sess > 0
    prev_inp = np.zeros(nk)
    prev_inp[1:] = inp[:-1]
    prev_model = np.full(nk, -1)
    prev_model[1:] = k_model[:-1]
    warm = same & (gap <= CACHE_TTL_S) & (prev_model == k_model)
    # providers cache prefixes of at least 1,024 tokens
    hit = warm & (prev_inp >= CACHE_MIN) & (rng.random(nk) < pop.p_hit[turns.g])
    sys_hit = (sys_prompt >= CACHE_MIN) & (rng.random(nk) < pop.p_sys[turns.g])
    cr = np.where(
        hit,
        np.floor(prev_inp / CACHE_BLOCK) * CACHE_BLOCK,
        np.where(sys_hit, np.floor(sys_prompt / CACHE_BLOCK) * CACHE_BLOCK, 0.0),
    )
    cw = np.where(cat.WRITES_CACHE[k_model], inp - cr, 0.0)
    return cr, cw


def _attempts(turns: _Turns, prompts: _Prompts, rng: np.random.Generator) -> _Attempts:
    """Each turn expanded to its attempts: failed ones (partial output, a timeout or a fast
    error) then the one that answered, after exponential backoff."""
    natt = turns.nf + ~turns.dead
    r_k = np.repeat(np.arange(turns.n), natt)
    attempt = _seg_arange(natt) + 1
    err = attempt <= turns.nf[r_k]
    nr = len(r_k)
    visible, reasoning = prompts.visible, prompts.reasoning
    out = visible[r_k] + reasoning[r_k]
    out_err = np.floor(visible[r_k] * rng.uniform(0.0, 0.5, nr))
    r_out = np.where(err, out_err, out)
    r_model = prompts.model[r_k]
    r_in = prompts.inp[r_k]
    ok_lat = (300.0 + r_out * cat.MS_PER_TOKEN[r_model] + r_in * 0.01) * rng.lognormal(
        0.0, 0.25, nr
    )
    err_lat = np.where(
        rng.random(nr) < 0.5, rng.uniform(30000.0, 60000.0, nr), rng.uniform(200.0, 1500.0, nr)
    )
    r_lat = np.round(np.where(err, err_lat, ok_lat), 1)
    backoff = np.where(err, 1000.0 * 2.0 ** (attempt - 1), 0.0)
    r_span = r_lat + backoff
    return _Attempts(
        k=r_k,
        attempt=attempt,
        err=err,
        out=r_out,
        reasoning=np.where(err, 0.0, reasoning[r_k]),
        model=r_model,
        inp=r_in,
        lat=r_lat,
        off_ms=excl_cumsum(r_span, natt),
        llm_ms=np.bincount(r_k, weights=r_span, minlength=turns.n),
    )


def _schedule(
    sess: Sessions,
    turns: _Turns,
    tools: _Tools,
    att: _Attempts,
    gap: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tool latencies and each turn's start and duration (retrieval, attempts, tools, think).

    Returns (tool call latency ms, turn start s, turn duration s, retrieval ms per turn).
    """
    tc_lat = np.round(cat.TOOL_LATENCY_MS[tools.tool] * rng.lognormal(0.0, 0.5, tools.n), 1)
    tool_ms = np.bincount(tools.k, weights=tc_lat + 30.0, minlength=turns.n)
    retr_ms = np.where(turns.wl == 2, 250.0, 0.0)
    dur_s = (retr_ms + att.llm_ms + tool_ms) / 1000.0
    k_start = sess.start[turns.s] + excl_cumsum(dur_s + gap, turns.s_nturn) + gap
    return tc_lat, k_start, dur_s, retr_ms


def _outcomes(
    pop: Population,
    tasks: _Tasks,
    turns: _Turns,
    k_start: np.ndarray,
    dur_s: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Each task's outcome (workload rates, drift, the customer's difficulty, magnets, the free
    tier's lack of human support) and its timestamp in seconds."""
    ntask, t_wl, t_g = tasks.n, tasks.wl, tasks.g
    t_dead = np.zeros(ntask, dtype=bool)
    t_dead[turns.t[turns.dead]] = True
    t_mag = _has(pop, "failure_magnet", t_g)
    p_base = cat.OUTCOME_P[t_wl].copy()
    slip = p_base[:, 0] * 0.15 * tasks.f  # a little less resolves as the drift sets in
    p_base[:, 0] -= slip
    p_base[:, 1] += slip / 2
    p_base[:, 2] += slip / 2
    # the customer's difficulty scales the share of tasks that do not resolve
    fail = p_base[:, 1:] * pop.difficulty[t_g][:, None]
    tot = fail.sum(axis=1)
    capped = np.minimum(tot, MAX_FAIL_SHARE)
    fail *= (capped / tot)[:, None]
    p_base = np.concatenate([(1.0 - capped)[:, None], fail], axis=1)
    # the free tier has no human support: what would escalate is abandoned
    free = pop.tier[t_g] == 0
    p_base[free, 2] += p_base[free, 5]
    p_base[free, 5] = 0.0
    p_out = np.where(t_mag[:, None], cat.OUTCOME_P_MAGNET[None, :], p_base)
    outcome = _categorical(rng, p_out)
    outcome[t_dead] = np.where((t_wl[t_dead] == 1) & (rng.random(int(t_dead.sum())) < 0.5), 4, 3)
    t_last = np.zeros(ntask, dtype=np.int64)
    t_last[turns.t] = np.arange(turns.n)  # index of each task's last turn (turns.t ascending)
    t_end = k_start[t_last] + dur_s[t_last]
    delay = np.where(
        outcome == 2, 1800.0, np.where(outcome == 3, 0.0, rng.uniform(2.0, 60.0, ntask))
    )
    return outcome, t_end + delay


def _columns(
    sess: Sessions,
    tasks: _Tasks,
    turns: _Turns,
    tools: _Tools,
    att: _Attempts,
    cr: np.ndarray,
    cw: np.ndarray,
    tc_lat: np.ndarray,
    k_start: np.ndarray,
    retr_ms: np.ndarray,
    outcome: np.ndarray,
    t_ts: np.ndarray,
    rng: np.random.Generator,
) -> list[dict[str, np.ndarray]]:
    """The columns of each event kind (llm, tool, retrieval, outcome, escalation)."""
    r_k, k_s, k_t = att.k, turns.s, turns.t
    nr = len(r_k)
    llm = {
        "kind": np.full(nr, KIND_LLM),
        "ts": to_us(k_start[r_k] + (retr_ms[r_k] + att.off_ms) / 1000.0),
        "session": k_s[r_k],
        "task": k_t[r_k],
        "model": att.model,
        "attempt": att.attempt,
        "input_tokens": att.inp,
        "output_tokens": att.out,
        "cache_read_tokens": cr[r_k],
        "cache_write_tokens": cw[r_k],
        "reasoning_tokens": att.reasoning,
        "latency_ms": att.lat,
        "status": att.err.astype(np.int8),
    }
    tc_k, ntc = tools.k, tools.n
    tc_j = _seg_arange(tools.ntool)
    tc_err = rng.random(ntc) < np.where(turns.mag[tc_k], 0.25, 0.02)
    tool = {
        "kind": np.full(ntc, KIND_TOOL),
        "ts": to_us(k_start[tc_k] + (retr_ms[tc_k] + att.llm_ms[tc_k] + tc_j * 30.0) / 1000.0),
        "session": k_s[tc_k],
        "task": k_t[tc_k],
        "tool": tools.tool,
        "status": tc_err.astype(np.int8),
        "latency_ms": tc_lat,
    }
    rag = np.flatnonzero(turns.wl == 2)
    nrag = len(rag)
    retr = {
        "kind": np.full(nrag, KIND_RETR),
        "ts": to_us(k_start[rag]),
        "session": k_s[rag],
        "task": k_t[rag],
        "queries": 1 + rng.binomial(2, 0.3, nrag),
        "reranks": np.where(sess.feat[k_s[rag]] == 4, 1, rng.random(nrag) < 0.3).astype(np.int64),
    }
    outc = {
        "kind": np.full(tasks.n, KIND_OUT),
        "ts": to_us(t_ts),
        "session": tasks.s,
        "task": np.arange(tasks.n),
        "outcome": outcome,
    }
    esc_t = np.flatnonzero(outcome == 5)
    nesc = len(esc_t)
    esc = {
        "kind": np.full(nesc, KIND_ESC),
        "ts": to_us(t_ts[esc_t]),
        "session": tasks.s[esc_t],
        "task": esc_t,
        "minutes": np.round(
            np.clip(rng.lognormal(np.log(ESC_MEDIAN_MIN), 0.8, nesc), 0.5, 60.0), 1
        ),
    }
    return [llm, tool, retr, outc, esc]


def _finish(
    pop: Population,
    cust: np.ndarray,
    users: _Users,
    sess: Sessions,
    tasks: _Tasks,
    parts: list[dict[str, np.ndarray]],
) -> Chunk:
    """Session attributes on every row, the window's end, the tier budgets (``enforce``),
    provider-reported costs, then every row in (customer, time, kind) order."""
    for p in parts:
        p["cust"] = sess.c[p["session"]]
        p["user"] = sess.user[p["session"]]
        p["workload"] = sess.wl[p["session"]]
        p["feature"] = sess.feat[p["session"]]
    cols = concat(parts)
    cols["cust"] = cust[cols["cust"]]  # to global customer index
    # a session still running when the window closes belongs to the next window: left out, so
    # that every event falls inside the window (a report of its last month sees a whole month)
    last = np.zeros(sess.n, dtype=np.int64)
    np.maximum.at(last, cols["session"], cols["ts"])
    inside = last[cols["session"]] < pop.days * 86400 * US
    if not inside.all():
        cols = {k: v[inside] for k, v in cols.items()}
    # the tier budgets: degrade, deny, alert and meter overage as the guard would
    cols, extra = enforce(pop, cols, sess)
    # provider-reported cost (the price a gateway logged), for the customers that report it
    rep = np.flatnonzero((cols["kind"] == KIND_LLM) & pop.reports_cost[cols["cust"]])
    cols["cost_usd"][rep] = np.round(llm_cost(cols, rep), 9)
    if extra:
        cols = concat([cols, *extra])
    order = np.lexsort((KIND_PRIO[cols["kind"]], cols["ts"], cols["cust"]))
    cols = {k: v[order] for k, v in cols.items()}
    return Chunk(cols=cols, users=users.ids, n_sessions=sess.n, n_tasks=tasks.n)
