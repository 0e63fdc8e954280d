/* The local workspace page: follows /dev/state, draws channels, threads, modals and the App
 * Home with BlockKit, and acts as the chosen member through the /dev/ endpoints. */
"use strict";

(function () {
  const BK = window.BlockKit;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const CHANNEL_NOTES = {
    ops: "Operations: requests with no channel of their own land here",
    deploy: "Deploys and rollbacks",
    payments: "Money leaving the company",
    escalate: "Requests nobody decided in time",
    security: "Private: only its members see it, and only they may decide its cards",
  };
  const OUTCOMES = {
    approve: ["approved", "Approved"],
    edit: ["approved", "Approved with edits"],
    reject: ["rejected", "Rejected"],
    feedback: ["feedback", "Feedback for the agent"],
    timeout: ["expired", "Timed out"],
    cancel: ["cancelled", "Cancelled"],
  };

  const saved = (key, fallback) => {
    try {
      return window.localStorage.getItem(`devslack.${key}`) || fallback;
    } catch (error) {
      return fallback;
    }
  };
  const save = (key, value) => {
    try {
      window.localStorage.setItem(`devslack.${key}`, value);
    } catch (error) {
      /* private mode: nothing to remember */
    }
  };

  const S = {
    me: new URLSearchParams(window.location.search).get("user") || saved("me", "U0ALICE"),
    place: saved("place", "C0OPS"),
    thread: null,
    snap: null,
    seq: 0,
    seen: {},
    dismissed: new Set(),
    poll: null,
    immediate: true,
    modalKey: null,
    modalFields: null,
    homeAsked: new Set(),
    flash: null,
    who: "",
    /* Slack's own notes to you (an unknown /command), kept by the page: {channel, ts, text} */
    localNotes: [],
    /* until when the timeline keeps to its bottom: what you just sent, and its answer */
    stickUntil: 0,
  };

  /* --------------------------------------------------------------------------- helpers */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function icon(paths, className) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 20 20");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", `icon ${className || ""}`);
    for (const d of paths) {
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      svg.append(path);
    }
    return svg;
  }

  const ICONS = {
    check: ["M4 10.5l3.5 3.5L16 5.5"],
    close: ["M5 5l10 10M15 5L5 15"],
    thread: ["M4 4h12v9H9l-4 3v-3H4z"],
    eye: ["M2 10s3-5.5 8-5.5S18 10 18 10s-3 5.5-8 5.5S2 10 2 10z", "M10 12.5a2.5 2.5 0 100-5 2.5 2.5 0 000 5z"],
    play: ["M6 4.5l9 5.5-9 5.5z"],
    jump: ["M8 4h8v8M16 4L6 14"],
    lock: ["M5 9h10v7.5H5z", "M7.5 9V6.5a2.5 2.5 0 015 0V9"],
  };

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function user(id) {
    return (S.snap && S.snap.users.find((u) => u.id === id)) || null;
  }

  function channel(id) {
    return (S.snap && S.snap.channels.find((c) => c.id === id)) || null;
  }

  /* How Slack names a channel: `#name`, or a lock before a private one's name. */
  function channelLabel(c) {
    return c.isPrivate ? `🔒 ${c.name}` : `#${c.name}`;
  }

  function channelMark(c, className) {
    if (c && c.isPrivate) {
      const lock = icon(ICONS.lock, `${className} lock`);
      lock.setAttribute("aria-label", "private");
      lock.setAttribute("aria-hidden", "false");
      lock.setAttribute("role", "img");
      return lock;
    }
    return el("span", className, "#");
  }

  function dmId() {
    const dm = S.snap && S.snap.channels.find((c) => c.isIm && c.user === S.me);
    return dm ? dm.id : null;
  }

  function context(extra) {
    const snap = S.snap;
    return Object.assign(
      {
        me: S.me,
        userName: (id) => {
          const u = user(id);
          return u ? u.name : null;
        },
        channelName: (id) => {
          const c = channel(id);
          return c && !c.isIm ? c.name : null;
        },
        groupHandle: (id) => {
          const g = snap.usergroups.find((group) => group.id === id);
          return g ? g.handle : null;
        },
        users: () => snap.users.filter((u) => !u.isBot),
        channels: () => snap.channels.filter((c) => !c.isIm),
      },
      extra || {},
    );
  }

  function clock(ts) {
    const when = new Date(Number(ts) * 1000);
    return when.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" });
  }

  function elapsed(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function toast(message, kind) {
    const item = el("div", `toast toast-${kind || "info"}`, message);
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    $("toasts").append(item);
    setTimeout(() => item.classList.add("toast-leaving"), 5200);
    setTimeout(() => item.remove(), 5600);
  }

  /* ------------------------------------------------------------------------ the server */

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ user: S.me }, body)),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || `${path} answered HTTP ${response.status}`);
    return data;
  }

  /* Act as the member; say so when the bot did not answer the way Slack expects. */
  async function act(path, body, what, quiet) {
    try {
      const result = await post(path, body);
      if (!quiet && result.status != null && result.status !== 200) {
        const detail = result.answer && result.answer.error ? ` (${result.answer.error})` : "";
        toast(`The bot answered HTTP ${result.status} to ${what}${detail}`, "error");
      } else if (!quiet && result.problems && result.problems.length) {
        toast(`Slack would show an error: ${result.problems.join("; ")}`, "error");
      }
      return result;
    } catch (error) {
      if (!quiet) toast(error.message, "error");
      return null;
    }
  }

  function connected(live) {
    const conn = $("conn");
    conn.classList.toggle("conn-live", live);
    conn.lastChild.textContent = live ? "live" : "reconnecting…";
  }

  /* Follow the workspace: each answer is the whole state, once something changed. */
  async function follow() {
    let delay = 400;
    for (;;) {
      const controller = new AbortController();
      S.poll = controller;
      const wait = S.immediate ? 0 : 25;
      S.immediate = false;
      const query = `user=${encodeURIComponent(S.me)}&since=${S.seq}&wait=${wait}`;
      try {
        const response = await fetch(`/dev/state?${query}`, {
          signal: controller.signal,
          cache: "no-store",
        });
        if (response.status === 404 && S.me !== "U0ALICE") {
          S.me = "U0ALICE"; // not a member of this workspace (an old link or a restart)
          S.immediate = true;
          continue;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const snap = await response.json();
        if (controller.signal.aborted) continue;
        connected(true);
        delay = 400;
        apply(snap);
      } catch (error) {
        if (controller.signal.aborted) continue;
        connected(false);
        // Back, the bot may be a new process whose change numbers started again: ask for the
        // whole state at once rather than for changes after a number it never reached.
        S.immediate = true;
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  function refetch() {
    S.immediate = true;
    if (S.poll) S.poll.abort();
  }

  function apply(snap) {
    const fresh = !S.snap || S.snap.me !== snap.me;
    S.snap = snap;
    S.seq = snap.seq;
    if (!snap.channels.some((c) => c.id === S.place) && !S.place.startsWith("app:")) {
      const first = snap.channels.find((c) => !c.isIm); // not a member here: somewhere they are
      S.place = first ? first.id : "app:home";
    }
    if (fresh) {
      S.seen = {};
      for (const c of snap.channels) S.seen[c.id] = (snap.messages[c.id] || []).length;
    }
    render();
  }

  /* -------------------------------------------------------------------------- render */

  function render() {
    if (!S.snap) return;
    const place = S.place;
    if (!place.startsWith("app:")) S.seen[place] = (S.snap.messages[place] || []).length;
    if (place === "app:messages" && dmId()) S.seen[dmId()] = (S.snap.messages[dmId()] || []).length;
    renderWho();
    renderSidebar();
    renderMain();
    renderPane();
    renderModal();
  }

  function renderWho() {
    const select = $("who");
    const members = S.snap.users.filter((u) => !u.isBot);
    const signature = members.map((u) => u.id).join(",");
    if (S.who !== signature) {
      S.who = signature;
      select.replaceChildren(
        ...members.map((u) => {
          const item = el("option", "", u.realName || u.name);
          item.value = u.id;
          return item;
        }),
      );
    }
    select.value = S.me;
    $("who-avatar").replaceChildren(avatar(S.me, false));
  }

  function avatar(userId, isBot, small) {
    const node = el("span", `avatar${small ? " avatar-small" : ""}`);
    if (isBot) {
      node.classList.add("avatar-bot");
      node.append(icon(ICONS.check));
      return node;
    }
    const u = user(userId);
    const name = u ? u.realName || u.name : userId;
    let hash = 0;
    for (const ch of userId || "") hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    node.classList.add(`avatar-${hash % 8}`);
    node.textContent = name
      .split(/\s+/)
      .map((part) => part[0] || "")
      .join("")
      .slice(0, 2)
      .toUpperCase();
    node.title = name;
    return node;
  }

  function navButton(label, place, unread, leading) {
    const item = el("li");
    const nav = el("button", "nav-item");
    nav.type = "button";
    nav.dataset.place = place;
    const active = S.place === place || (place === "app:home" && S.place.startsWith("app:"));
    if (active) {
      nav.classList.add("nav-active");
      nav.setAttribute("aria-current", "page");
    }
    if (unread > 0 && !active) nav.classList.add("nav-unread");
    nav.append(leading, el("span", "nav-label", label));
    if (unread > 0 && !active) nav.append(el("span", "nav-badge", String(unread)));
    nav.addEventListener("click", () => go(place));
    item.append(nav);
    return item;
  }

  function renderSidebar() {
    const unread = (id) => Math.max(0, (S.snap.messages[id] || []).length - (S.seen[id] || 0));
    const channels = S.snap.channels.filter((c) => !c.isIm);
    $("channel-list").replaceChildren(
      ...channels.map((c) => navButton(c.name, c.id, unread(c.id), channelMark(c, "nav-hash"))),
    );
    const dm = dmId();
    $("app-list").replaceChildren(
      navButton(S.snap.bot.name, "app:home", dm ? unread(dm) : 0, avatar(null, true, true)),
    );
    $("team-name").textContent = S.snap.team.name;
  }

  function go(place) {
    S.place = place;
    save("place", place);
    if (place === "app:home") askForHome();
    render();
    const box = $("timeline");
    box.scrollTop = box.scrollHeight;
  }

  function askForHome() {
    if (S.homeAsked.has(S.me)) return;
    S.homeAsked.add(S.me);
    act("/dev/home", {}, "App Home", true);
  }

  /* The main column: a channel, or the bot's Home and Messages tabs. */
  function renderMain() {
    const place = S.place;
    const title = $("title");
    const note = $("subtitle");
    const tabs = $("tabs");
    const composer = $("composer");
    if (place.startsWith("app:")) {
      title.replaceChildren(avatar(null, true, true), el("span", "", S.snap.bot.name), el("span", "msg-badge", "APP"));
      note.textContent = "";
      tabs.hidden = false;
      for (const tab of tabs.querySelectorAll("button")) {
        const on = tab.dataset.place === place;
        tab.classList.toggle("tab-active", on);
        tab.setAttribute("aria-selected", String(on));
      }
      if (place === "app:home") {
        composer.hidden = true;
        renderHome();
        return;
      }
      composer.hidden = false;
      $("composer-text").placeholder = `Message ${S.snap.bot.name}`;
      const dm = dmId();
      renderTimeline(dm ? S.snap.messages[dm] || [] : [], dm, "Your direct messages with the bot: notes it sends only to you show up here.");
      return;
    }
    const current = channel(place);
    tabs.hidden = true;
    composer.hidden = false;
    const label = current ? channelLabel(current) : place;
    title.replaceChildren(channelMark(current, "title-hash"), el("span", "", current ? current.name : place));
    note.textContent = current ? CHANNEL_NOTES[current.name] || "" : "";
    $("composer-text").placeholder = `Message ${label}`;
    renderTimeline(
      S.snap.messages[place] || [],
      place,
      `This is the very beginning of ${label}. Approval cards for it appear here; start one from the agent panel.`,
    );
  }

  function renderHome() {
    const box = $("timeline");
    const home = S.snap.home;
    const key = home ? `home:${home.id}:${home.hash}` : "home:none";
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    if (!home) {
      const empty = el("div", "empty");
      empty.append(
        el("div", "empty-title", "No Home tab yet"),
        el("p", "", `${S.snap.bot.name} has not published a Home tab for you. When the bot calls views.publish, it appears here.`),
      );
      box.replaceChildren(empty);
      return;
    }
    const surface = el("div", "home-surface");
    surface.append(
      BK.renderBlocks(home.blocks, context({
        onButton: (click) => clickInView(home, click),
      })),
    );
    box.replaceChildren(surface);
  }

  /* Where a note only you see goes: under the message whose click it answers (as Slack shows
   * a click's ephemeral response), else in its thread or the channel, in time order. */
  function noteHome(note) {
    if (note.under) {
      if ((S.snap.messages[note.channel] || []).some((m) => m.ts === note.under)) {
        return { thread: null, after: note.under };
      }
      for (const [parent, replies] of Object.entries(S.snap.threads[note.channel] || {})) {
        if (replies.some((m) => m.ts === note.under)) return { thread: parent, after: note.under };
      }
    }
    return { thread: note.thread_ts || null, after: null };
  }

  function itemsFor(messages, channelId, thread) {
    const items = messages.map((m) => ({ key: `m${m.ts}`, kind: "message", ts: m.ts, data: m }));
    for (const note of [...S.snap.ephemerals, ...S.localNotes]) {
      if (note.channel !== channelId || S.dismissed.has(note.ts)) continue;
      const home = noteHome(note);
      if (home.thread !== (thread || null)) continue;
      const ts = home.after || note.ts;
      items.push({ key: `e${note.ts}`, kind: "ephemeral", ts, data: note, under: home.after });
    }
    // by time; a note given a message's place comes right after it, notes in their own order
    const order = (item) => [item.ts, item.kind === "message" ? 0 : 1, item.data.ts];
    items.sort((a, b) => {
      const [x, y] = [order(a), order(b)];
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
      return 0;
    });
    for (const item of items) {
      item.sig = `${S.me}|${S.flash === item.ts}|${item.under}|${JSON.stringify(item.data)}`;
    }
    return items;
  }

  function sync(container, items, build) {
    const old = new Map();
    for (const node of container.children) if (node.dataset.key) old.set(node.dataset.key, node);
    const nodes = items.map((item) => {
      const existing = old.get(item.key);
      if (existing && existing.dataset.sig === item.sig) return existing;
      const node = build(item);
      node.dataset.key = item.key;
      node.dataset.sig = item.sig;
      return node;
    });
    const kids = container.children;
    const same = nodes.length === kids.length && nodes.every((node, i) => kids[i] === node);
    if (!same) container.replaceChildren(...nodes);
  }

  function renderTimeline(messages, channelId, intro) {
    const box = $("timeline");
    const key = `place:${S.place}:${S.me}`;
    const switched = box.dataset.key !== key;
    if (switched) {
      box.dataset.key = key;
      box.replaceChildren();
    }
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const items = [{ key: "intro", sig: intro, kind: "intro" }, ...itemsFor(messages, channelId, null)];
    sync(box, items, (item) => {
      if (item.kind === "intro") {
        const node = el("div", "intro");
        node.append(el("p", "", intro));
        return node;
      }
      return item.kind === "ephemeral" ? ephemeralNode(item.data, item.under) : messageNode(item.data, "channel");
    });
    if (S.flash) {
      const target = box.querySelector(`[data-key="m${CSS.escape(S.flash)}"]`);
      if (target) target.scrollIntoView({ block: "center" });
    } else if (switched || nearBottom || Date.now() < S.stickUntil) {
      box.scrollTop = box.scrollHeight;
    }
  }

  function messageNode(message, where) {
    const node = el("article", "msg");
    node.dataset.ts = message.ts;
    if (S.flash === message.ts) node.classList.add("msg-flash");
    const author = user(message.user);
    const isBot = Boolean(message.bot_id) || Boolean(author && author.isBot);
    node.append(avatar(message.user, isBot));
    const body = el("div", "msg-body");
    const head = el("div", "msg-head");
    head.append(el("span", "msg-author", isBot ? S.snap.bot.name : author ? author.realName : message.user));
    if (isBot) head.append(el("span", "msg-badge", "APP"));
    const time = el("time", "msg-time", clock(message.ts));
    time.title = new Date(Number(message.ts) * 1000).toLocaleString();
    head.append(time);
    if (message.edited) head.append(el("span", "msg-edited", "(edited)"));
    body.append(head);
    const content = el("div", "msg-content");
    if (message.blocks && message.blocks.length) {
      content.append(
        BK.renderBlocks(message.blocks, context({
          onButton: (click) => clickMessage(message, click),
        })),
      );
    } else {
      content.append(BK.textNode({ type: "mrkdwn", text: message.text }, context(), "div", "bk-text"));
    }
    body.append(content);
    if (message.reactions && message.reactions.length) body.append(reactionsNode(message.reactions));
    if (where === "channel" && message.reply_count) body.append(threadFooter(message));
    node.append(body);
    if (where === "channel") {
      const tools = el("div", "msg-tools");
      const reply = el("button", "icon-button");
      reply.type = "button";
      reply.title = "Reply in thread";
      reply.setAttribute("aria-label", "Reply in thread");
      reply.append(icon(ICONS.thread));
      reply.addEventListener("click", () => openThread(message.channel, message.ts));
      tools.append(reply);
      node.append(tools);
    }
    return node;
  }

  /* A note only you see: the bot's, or Slack's own (`local`, e.g. an unknown command). */
  function ephemeralNode(note, under) {
    const node = el("article", "msg msg-ephemeral");
    node.dataset.ts = note.ts;
    if (under) {
      node.classList.add("msg-ephemeral-under");
      node.dataset.under = under;
    }
    node.append(note.local ? el("span", "avatar avatar-slackbot", "S") : avatar(null, true));
    const body = el("div", "msg-body");
    const head = el("div", "msg-head");
    head.append(el("span", "msg-author", note.local ? "Slackbot" : S.snap.bot.name));
    if (!note.local) head.append(el("span", "msg-badge", "APP"));
    head.append(el("time", "msg-time", clock(note.ts)));
    body.append(head);
    const content = el("div", "msg-content");
    if (note.blocks && note.blocks.length) content.append(BK.renderBlocks(note.blocks, context()));
    else content.append(BK.textNode({ type: "mrkdwn", text: note.text }, context(), "div", "bk-text"));
    body.append(content);
    const foot = el("div", "ephemeral-foot");
    foot.append(icon(ICONS.eye), el("span", "", "Only visible to you"));
    const dismiss = el("button", "link-button", "Dismiss");
    dismiss.type = "button";
    dismiss.addEventListener("click", () => {
      S.dismissed.add(note.ts);
      render();
    });
    foot.append(dismiss);
    body.append(foot);
    node.append(body);
    return node;
  }

  function reactionsNode(reactions) {
    const row = el("div", "reactions");
    for (const reaction of reactions) {
      const chip = el("span", "reaction");
      if (reaction.users.includes(S.me)) chip.classList.add("reaction-mine");
      const face = el("span", "reaction-emoji");
      face.innerHTML = BK.mrkdwn(`:${reaction.name}:`);
      chip.append(face, el("span", "reaction-count", String(reaction.count)));
      chip.title = `${reaction.users.map((id) => (user(id) || { name: id }).name).join(", ")} reacted with :${reaction.name}:`;
      row.append(chip);
    }
    return row;
  }

  function threadFooter(message) {
    const footer = el("button", "thread-link");
    footer.type = "button";
    const faces = el("span", "thread-faces");
    for (const id of (message.reply_users || []).slice(0, 3)) {
      const author = user(id);
      faces.append(avatar(id, Boolean(author && author.isBot), true));
    }
    const count = message.reply_count;
    footer.append(
      faces,
      el("span", "thread-count", `${count} ${count === 1 ? "reply" : "replies"}`),
      el("span", "thread-last", `Last reply ${clock(message.latest_reply)}`),
    );
    footer.addEventListener("click", () => openThread(message.channel, message.ts));
    return footer;
  }

  /* -------------------------------------------------------------------- the right pane */

  function openThread(channelId, ts) {
    S.thread = { channel: channelId, ts };
    render();
    $("thread-text").focus();
  }

  function closeThread() {
    S.thread = null;
    render();
  }

  function renderPane() {
    const thread = S.thread;
    const parent =
      thread && (S.snap.messages[thread.channel] || []).find((m) => m.ts === thread.ts);
    $("thread").hidden = !parent;
    $("agents").hidden = Boolean(parent);
    if (parent) renderThread(parent);
    else S.thread = null;
    renderAgents();
  }

  function renderThread(parent) {
    const c = channel(parent.channel);
    $("thread-where").textContent = c ? (c.isIm ? S.snap.bot.name : channelLabel(c)) : parent.channel;
    const replies = (S.snap.threads[parent.channel] || {})[parent.ts] || [];
    const list = $("thread-list");
    const key = `${parent.channel}:${parent.ts}:${S.me}`;
    const switched = list.dataset.thread !== key;
    if (switched) {
      list.dataset.thread = key;
      list.replaceChildren();
    }
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const count = replies.length;
    const items = [
      { key: "parent", sig: `${S.me}|${JSON.stringify(parent)}`, kind: "parent", data: parent },
      { key: "count", sig: String(count), kind: "count" },
      ...itemsFor(replies, parent.channel, parent.ts),
    ];
    sync(list, items, (item) => {
      if (item.kind === "count") {
        const line = el("div", "thread-divider");
        line.append(el("span", "", count ? `${count} ${count === 1 ? "reply" : "replies"}` : "No replies yet"));
        return line;
      }
      if (item.kind === "ephemeral") return ephemeralNode(item.data, item.under);
      return messageNode(item.data, item.kind === "parent" ? "parent" : "reply");
    });
    const flashed = S.flash && list.querySelector(`[data-key="m${CSS.escape(S.flash)}"]`);
    if (flashed) flashed.scrollIntoView({ block: "center" });
    else if (switched || nearBottom) list.scrollTop = list.scrollHeight;
  }

  function renderAgents() {
    const examples = $("examples");
    if (!examples.childElementCount) {
      for (const example of S.snap.examples) examples.append(exampleNode(example));
    }
    const runs = S.snap.agents;
    const waiting = S.snap.waiting || [];
    $("runs-empty").hidden = runs.length + waiting.length > 0;
    const items = [
      ...waiting.map((agent) => ({ key: `api:${agent.approvalId}`, kind: "api", data: agent })),
      ...runs.map((run) => ({ key: run.id, kind: "run", data: run })),
    ];
    for (const item of items) {
      const card = findCard(item.data.approvalId);
      item.sig = JSON.stringify(item.data) + (card ? card.channel : "") + S.me;
    }
    sync($("runs"), items, (item) => (item.kind === "api" ? waitingNode(item.data) : runNode(item.data)));
    tick();
  }

  /* A link to where the approval's card is, once it is on the page. */
  function cardLink(approvalId) {
    const card = findCard(approvalId);
    if (!card) return null;
    const jump = el("button", "link-button");
    jump.type = "button";
    const c = channel(card.channel);
    jump.append(el("span", "", `card in ${c ? channelLabel(c) : card.channel}`), icon(ICONS.jump));
    jump.addEventListener("click", () => jumpTo(card));
    return jump;
  }

  /* An agent that came in over the API (curl, `approval-bot demo`, an SDK script), blocked in
   * /wait: what it waits on, for whom, where, and since when. */
  function waitingNode(agent) {
    const node = el("li", "run run-waiting run-api");
    node.dataset.approval = agent.approvalId;
    const head = el("div", "run-head");
    head.append(el("code", "run-tool", agent.toolName));
    const state = el("span", "run-state");
    const since = el("span", "run-elapsed");
    since.dataset.since = String(agent.since);
    state.append(el("span", "pulse"), el("span", "", "waiting "), since);
    head.append(state);
    const meta = el("div", "run-meta");
    meta.append(el("span", "run-source", "via the API"));
    if (agent.agent) meta.append(el("span", "run-agent", agent.agent));
    const c = channel(agent.channel);
    meta.append(el("span", "run-channel", c ? channelLabel(c) : agent.channel || "default channel"));
    if (agent.waits > 1) meta.append(el("span", "run-waits", `${agent.waits} waits`));
    const ids = el("div", "run-meta");
    ids.append(el("code", "run-id", agent.approvalId));
    const jump = cardLink(agent.approvalId);
    if (jump) ids.append(jump);
    node.append(head, meta, ids);
    return node;
  }

  function exampleNode(example) {
    const node = el("button", "example");
    node.type = "button";
    node.dataset.example = example.key;
    const top = el("span", "example-top");
    top.append(el("code", "example-tool", example.toolName), el("span", `chip chip-${example.priority}`, example.priority));
    const meta = el("span", "example-meta");
    const where = example.channel || "default channel";
    meta.textContent = `→ ${where}${example.hasSchema ? " · typed argsSchema" : ""}`;
    const go = el("span", "example-go");
    go.append(icon(ICONS.play), el("span", "", "Run"));
    node.append(top, el("span", "example-summary", example.summary), meta, go);
    node.addEventListener("click", async () => {
      node.disabled = true;
      const run = await act("/dev/simulate", { example: example.key }, example.toolName);
      node.disabled = false;
      if (run) refetch();
    });
    return node;
  }

  /* Where an approval's card is: a channel message, or a reply in a thread. */
  function findCard(approvalId) {
    if (!approvalId || !S.snap) return null;
    const suffix = `:${approvalId}`;
    const isCard = (message) => (message.blocks || []).some((b) => (b.block_id || "").endsWith(suffix));
    for (const [channelId, messages] of Object.entries(S.snap.messages)) {
      const top = messages.find(isCard);
      if (top) return { channel: channelId, ts: top.ts, thread: null };
      for (const [parent, replies] of Object.entries(S.snap.threads[channelId] || {})) {
        const reply = replies.find(isCard);
        if (reply) return { channel: channelId, ts: reply.ts, thread: parent };
      }
    }
    return null;
  }

  function jumpTo(card) {
    const where = channel(card.channel);
    S.flash = card.ts;
    S.place = where && where.isIm ? "app:messages" : card.channel;
    save("place", S.place);
    S.thread = card.thread ? { channel: card.channel, ts: card.thread } : S.thread;
    render();
    setTimeout(() => {
      S.flash = null;
      for (const node of document.querySelectorAll(".msg-flash")) node.classList.remove("msg-flash");
    }, 1600);
  }

  function runNode(run) {
    const node = el("li", `run run-${run.state}`);
    node.dataset.run = run.id;
    const head = el("div", "run-head");
    head.append(el("code", "run-tool", run.toolName));
    const state = el("span", "run-state");
    if (run.state === "submitting") state.append(el("span", "spinner"), el("span", "", "submitting…"));
    if (run.state === "waiting") {
      const since = el("span", "run-elapsed");
      since.dataset.since = String(run.startedAt);
      state.append(el("span", "pulse"), el("span", "", "waiting for a decision "), since);
    }
    if (run.state === "failed") state.append(el("span", "", "failed"));
    if (run.state === "decided") {
      const decision = run.decision || { action: run.status === "cancelled" ? "cancel" : "timeout" };
      const [tone, words] = OUTCOMES[decision.action] || ["rejected", run.status || "decided"];
      node.classList.add(`run-${tone}`);
      state.append(el("span", `outcome outcome-${tone}`, words));
    }
    head.append(state);
    node.append(head);
    const meta = el("div", "run-meta");
    if (run.approvalId) meta.append(el("code", "run-id", run.approvalId));
    const jump = cardLink(run.approvalId);
    if (jump) meta.append(jump);
    node.append(meta);
    if (run.error) node.append(el("div", "run-error", run.error));
    if (run.decision) node.append(receivedNode(run.decision));
    return node;
  }

  /* What the agent received: who decided, why, and the arguments it will run with. */
  function receivedNode(decision) {
    const box = el("div", "received");
    box.append(el("div", "received-title", "The agent received"));
    const rows = el("dl", "received-rows");
    const row = (term, value, className) => {
      rows.append(el("dt", "", term));
      const dd = el("dd", className || "");
      if (value instanceof Node) dd.append(value);
      else dd.textContent = value;
      rows.append(dd);
    };
    row("approved", String(decision.approved), decision.approved ? "yes" : "no");
    row("action", decision.action);
    const who = decision.decidedByName ? `${decision.decidedByName} (${decision.decidedBy})` : decision.decidedBy;
    row("decidedBy", who);
    if (decision.comment) row("comment", decision.comment);
    box.append(rows);
    if (decision.approvedArgs) {
      row("approvedArgs", el("pre", "received-args", JSON.stringify(decision.approvedArgs, null, 2)), "received-wide");
    }
    return box;
  }

  function tick() {
    const now = Date.now() / 1000;
    for (const node of document.querySelectorAll(".run-elapsed")) {
      node.textContent = elapsed(now - Number(node.dataset.since));
    }
  }

  /* ------------------------------------------------------------------ clicks and modals */

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const dialog = $("confirm");
      $("confirm-title").textContent = BK.plainText(confirm.title) || "Are you sure?";
      $("confirm-text").replaceChildren(BK.textNode(confirm.text, context(), "p"));
      const yes = $("confirm-yes");
      yes.textContent = BK.plainText(confirm.confirm) || "Yes";
      yes.className = `btn ${confirm.style === "danger" ? "btn-danger" : "btn-primary"}`;
      $("confirm-no").textContent = BK.plainText(confirm.deny) || "Cancel";
      dialog.returnValue = "";
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
      dialog.showModal();
      yes.focus();
    });
  }

  async function press(click, send) {
    const { element, node } = click;
    if (element.url) window.open(element.url, "_blank", "noopener,noreferrer");
    if (element.confirm && !(await confirmDialog(element.confirm))) return;
    node.disabled = true;
    node.classList.add("bk-busy");
    await send();
    node.disabled = false;
    node.classList.remove("bk-busy");
  }

  function clickMessage(message, click) {
    const label = BK.plainText(click.element.text);
    return press(click, () =>
      act("/dev/click", {
        channel: message.channel,
        ts: message.ts,
        actionId: click.element.action_id,
        blockId: click.blockId,
      }, `“${label}”`),
    );
  }

  function clickInView(view, click) {
    const label = BK.plainText(click.element.text);
    return press(click, () =>
      act("/dev/click", { viewId: view.id, actionId: click.element.action_id, blockId: click.blockId }, `“${label}”`),
    );
  }

  function renderModal() {
    const root = $("modal-root");
    const stack = S.snap.modals;
    const view = stack[stack.length - 1];
    if (!view) {
      if (S.modalKey) {
        root.replaceChildren();
        S.modalKey = null;
        S.modalFields = null;
        document.body.classList.remove("has-modal");
      }
      return;
    }
    const key = `${view.id}:${view.hash}`;
    if (S.modalKey !== key) {
      S.modalKey = key;
      S.modalFields = {};
      root.replaceChildren(modalNode(view, stack.length));
      document.body.classList.add("has-modal");
      const first = root.querySelector(".modal-body input, .modal-body textarea, .modal-body select");
      if (first) first.focus();
    }
    BK.showErrors(S.modalFields, view.errors);
  }

  function modalNode(view, depth) {
    const backdrop = el("div", "modal-backdrop");
    const box = el("div", "modal");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-labelledby", "modal-title");
    box.dataset.viewId = view.id;
    box.dataset.callbackId = view.callback_id || "";
    const head = el("header", "modal-head");
    const title = el("h2", "modal-title", BK.plainText(view.title));
    title.id = "modal-title";
    const x = el("button", "icon-button modal-x");
    x.type = "button";
    x.setAttribute("aria-label", "Close");
    x.append(icon(ICONS.close));
    x.addEventListener("click", () => closeModal(view));
    head.append(avatar(null, true, true), title, x);
    const form = el("form", "modal-body");
    form.noValidate = true;
    form.id = `form-${view.id}`;
    form.append(
      BK.renderBlocks(view.blocks, context({
        fields: S.modalFields,
        onButton: (click) => clickInView(view, click),
      })),
    );
    const foot = el("footer", "modal-foot");
    const cancel = el("button", "btn", BK.plainText(view.close) || (depth > 1 ? "Back" : view.submit ? "Cancel" : "Close"));
    cancel.type = "button";
    cancel.addEventListener("click", () => closeModal(view));
    foot.append(cancel);
    if (view.submit) {
      const submit = el("button", "btn btn-primary modal-submit", BK.plainText(view.submit));
      submit.type = "submit";
      submit.setAttribute("form", form.id);
      foot.append(submit);
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (view.submit) submitModal(view, foot.querySelector(".modal-submit"));
    });
    box.append(head, form, foot);
    backdrop.append(box);
    backdrop.addEventListener("mousedown", (event) => {
      if (event.target === backdrop) box.classList.add("modal-nudge");
    });
    box.addEventListener("animationend", () => box.classList.remove("modal-nudge"));
    return backdrop;
  }

  async function submitModal(view, button) {
    const fields = S.modalFields;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = "Sending…";
    const result = await act("/dev/submit", { viewId: view.id, values: BK.readValues(fields) }, "the form");
    if (S.modalKey && S.modalKey.startsWith(`${view.id}:`)) {
      button.disabled = false;
      button.textContent = label;
    }
    const answer = result && result.answer;
    if (answer && answer.response_action === "errors" && S.modalFields === fields) {
      BK.showErrors(fields, answer.errors || {});
      const bad = document.querySelector(".modal .bk-invalid input, .modal .bk-invalid textarea, .modal .bk-invalid select");
      if (bad) bad.focus();
    }
  }

  function closeModal(view) {
    act("/dev/close", { viewId: view.id }, "closing the modal");
  }

  /* A link to a message of this workspace (chat.getPermalink) jumps to it in the page. */
  function followPermalink(event) {
    const link = event.target.closest && event.target.closest("a.bk-link");
    if (!link) return;
    const url = new URL(link.href);
    const local = ["127.0.0.1", "localhost", window.location.hostname];
    if (!local.includes(url.hostname) || url.port !== window.location.port) return;
    const match = url.pathname.match(/^\/archives\/([A-Z0-9]+)\/p(\d{7,})$/);
    if (!match) return;
    event.preventDefault();
    const digits = match[2];
    const ts = `${digits.slice(0, -6)}.${digits.slice(-6)}`;
    jumpTo({ channel: match[1], ts, thread: url.searchParams.get("thread_ts") });
  }

  /* ------------------------------------------------------------------------ composers */

  /* Slack's answer to `/word` that names no command of the app: a note, and nothing posted. */
  function notACommand(command, where) {
    const shown = command.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    S.localNotes.push({
      local: true,
      channel: where.channel === S.me ? dmId() : where.channel,
      ts: (Date.now() / 1000).toFixed(6),
      text: `\`${shown}\` is not a valid command. In Slack, all messages that start with "/" are commands. To send a message that starts with "/", put a space before it.`,
    });
    render();
  }

  /* `/approvals mine` runs the app's slash command, as in Slack: its answer shows only to you. */
  async function runCommand(line, where) {
    const [command] = line.split(/\s+/, 1);
    if (!(S.snap.commands || []).includes(command)) {
      notACommand(command, where);
      return true;
    }
    const text = line.slice(command.length).trim();
    const result = await act("/dev/command", { channel: where.channel, command, text }, command);
    return Boolean(result);
  }

  function composer(form, textarea, target) {
    const send = async () => {
      const typed = textarea.value;
      const text = typed.trim();
      if (!text) return;
      form.reset();
      S.stickUntil = Date.now() + 3000;
      S.flash = null; // what you send, and its answer, are what you look at now
      const result = typed.startsWith("/")
        ? await runCommand(text, target())
        : await act("/dev/reply", Object.assign({ text }, target()), "your message");
      if (!result) textarea.value = typed;
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send();
    });
    const fit = () => {
      textarea.style.height = "auto";
      textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
    };
    textarea.addEventListener("input", fit);
    form.addEventListener("reset", fit);
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send();
      }
    });
  }

  function start() {
    composer($("composer"), $("composer-text"), () => ({
      channel: S.place === "app:messages" ? S.me : S.place,
    }));
    composer($("thread-composer"), $("thread-text"), () => ({
      channel: S.thread.channel,
      threadTs: S.thread.ts,
    }));
    $("thread-close").append(icon(ICONS.close));
    $("thread-close").addEventListener("click", closeThread);
    $("who").addEventListener("change", (event) => {
      S.me = event.target.value;
      save("me", S.me);
      window.history.replaceState(null, "", `?user=${encodeURIComponent(S.me)}`);
      S.thread = null;
      S.dismissed.clear();
      S.localNotes = [];
      if (S.place === "app:home") askForHome();
      refetch();
    });
    for (const tab of $("tabs").querySelectorAll("button")) {
      tab.addEventListener("click", () => go(tab.dataset.place));
    }
    document.addEventListener("click", followPermalink);
    $("confirm-yes").addEventListener("click", () => $("confirm").close("yes"));
    $("confirm-no").addEventListener("click", () => $("confirm").close("no"));
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || $("confirm").open) return;
      const top = S.snap && S.snap.modals[S.snap.modals.length - 1];
      if (top) closeModal(top);
      else if (S.thread) closeThread();
    });
    setInterval(tick, 1000);
    if (S.place === "app:home") askForHome();
    // a reload closes the modals this member had open, as Slack does; then the page follows
    act("/dev/opened", {}, "opening the page", true).finally(follow);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
