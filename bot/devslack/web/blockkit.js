/* Block Kit for the local workspace: mrkdwn to safe HTML, and blocks to DOM nodes.
 *
 * Message text is never trusted. mrkdwn is turned into HTML in three steps: Slack's own markup
 * (<@U…>, <!here>, <url|text>, which are the only places a literal "<" may appear) is set
 * aside and rendered from its escaped parts; every other character is then HTML-escaped; only
 * after that are *bold*, _italic_, ~strike~ and `code` turned into tags. Everything else is
 * built with textContent.
 */
"use strict";

(function () {
  /* Shortcodes the bot uses, drawn with CSS so they look the same without an emoji font. */
  const DRAWN = {
    white_circle: ["dot", "dot-white"],
    large_blue_circle: ["dot", "dot-blue"],
    large_orange_circle: ["dot", "dot-orange"],
    red_circle: ["dot", "dot-red"],
    large_green_circle: ["dot", "dot-green"],
    large_yellow_circle: ["dot", "dot-yellow"],
    large_purple_circle: ["dot", "dot-purple"],
    white_check_mark: ["tile", "tile-green", "\u2713"],
    heavy_check_mark: ["mark", "mark-green", "\u2714"],
    x: ["mark", "mark-red", "\u2715"],
    negative_squared_cross_mark: ["tile", "tile-red", "\u2715"],
    pencil2: ["mark", "mark-orange", "\u270E"],
    pencil: ["mark", "mark-orange", "\u270E"],
    hourglass: ["mark", "mark-grey", "\u231B"],
    hourglass_flowing_sand: ["mark", "mark-grey", "\u231B"],
    speech_balloon: ["tile", "tile-blue", "\u2026"],
    no_entry_sign: ["mark", "mark-red", "\u2298"],
    no_entry: ["mark", "mark-red", "\u2296"],
    warning: ["mark", "mark-orange", "\u26A0"],
    busts_in_silhouette: ["tile", "tile-grey", "\u2237"],
    lock: ["mark", "mark-grey", "\u26BF"],
    robot_face: ["tile", "tile-blue", "\u2699"],
    rotating_light: ["mark", "mark-red", "\u26A0"],
    tada: ["mark", "mark-orange", "\u2726"],
  };
  /* Other common shortcodes as Unicode. */
  const UNICODE = {
    "+1": "\u{1F44D}", thumbsup: "\u{1F44D}", "-1": "\u{1F44E}", eyes: "\u{1F440}",
    rocket: "\u{1F680}", fire: "\u{1F525}",
    wave: "\u{1F44B}", bell: "\u{1F514}", memo: "\u{1F4DD}", link: "\u{1F517}",
    heart: "\u2764\uFE0F", star: "\u2B50", zap: "\u26A1",
    clock3: "\u{1F552}", calendar: "\u{1F4C5}", email: "\u{1F4E7}", moneybag: "\u{1F4B0}",
    package: "\u{1F4E6}", shield: "\u{1F6E1}\uFE0F", white_check_mark_alt: "\u2705",
  };
  const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const SLACK_ENTITIES = { amp: "&", lt: "<", gt: ">" };
  const BROADCASTS = new Set(["here", "channel", "everyone"]);
  const HOLD = /\uE000(\d+)\uE001/g;
  const HELD = /\uE000\d+\uE001/;

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
  }

  /* Slack escapes exactly &, < and > in message text; undo that before escaping for HTML. */
  function unescapeSlack(text) {
    return String(text).replace(/&(amp|lt|gt);/g, (_, name) => SLACK_ENTITIES[name]);
  }

  function emojiHtml(name) {
    const drawn = DRAWN[name];
    if (drawn) {
      const [kind, tone, glyph] = drawn;
      return `<span class="emo emo-${kind} emo-${tone}" title=":${name}:" aria-label="${name}">` +
        `${glyph || ""}</span>`;
    }
    return UNICODE[name] || null;
  }

  /* Shortcodes in already-escaped HTML text; names are [a-z0-9_+-] so they cannot inject. */
  function emojify(html) {
    return html.replace(/:([a-z0-9_+-]{1,40}):/g, (whole, name) => emojiHtml(name) || whole);
  }

  /* Shortcodes in plain text, for textContent: Unicode only. */
  function emojifyPlain(text) {
    return String(text).replace(/:([a-z0-9_+-]{1,40}):/g, (whole, name) => {
      const drawn = DRAWN[name];
      if (drawn) return drawn[2] || "\u25CF";
      return UNICODE[name] || whole;
    });
  }

  function formatDate(epoch, format) {
    const when = new Date(Number(epoch) * 1000);
    if (Number.isNaN(when.getTime())) return "";
    const parts = {
      date_num: when.toISOString().slice(0, 10),
      date: when.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" }),
      date_short: when.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }),
      date_long: when.toLocaleDateString(undefined, {
        weekday: "long", year: "numeric", month: "long", day: "numeric",
      }),
      time: when.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" }),
      time_secs: when.toLocaleTimeString(),
    };
    for (const key of ["date", "date_short", "date_long"]) parts[key + "_pretty"] = parts[key];
    return String(format || "{date_short} {time}").replace(/\{(\w+)\}/g, (m, key) => parts[key] || m);
  }

  /* One piece of Slack markup: what was between "<" and ">". */
  function token(inner, ctx) {
    const bar = inner.indexOf("|");
    const target = bar < 0 ? inner : inner.slice(0, bar);
    const label = bar < 0 ? null : inner.slice(bar + 1);
    const text = (value) => escapeHtml(unescapeSlack(value));
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const name = ctx.userName(id) || (label && label.replace(/^@/, "")) || id;
      const self = id === ctx.me ? " bk-mention-me" : "";
      return `<span class="bk-mention${self}" title="${escapeHtml(id)}">@${text(name)}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const name = ctx.channelName(id) || label || id;
      return `<span class="bk-channel">#${text(name)}</span>`;
    }
    if (target.startsWith("!")) {
      const [command, ...rest] = target.slice(1).split("^");
      if (BROADCASTS.has(command)) {
        return `<span class="bk-mention bk-broadcast">@${command}</span>`;
      }
      if (command === "subteam") {
        const handle = ctx.groupHandle(rest[0]) || (label && label.replace(/^@/, "")) || rest[0];
        return `<span class="bk-mention bk-group">@${text(handle || "group")}</span>`;
      }
      if (command === "date") {
        const local = formatDate(rest[0], rest[1]);
        return `<time class="bk-date" title="${escapeHtml(local)}">${text(label || local)}</time>`;
      }
      return label ? text(label) : "";
    }
    const url = unescapeSlack(target);
    if (/^(https?:\/\/|mailto:)/i.test(url)) {
      return `<a class="bk-link" href="${escapeHtml(url)}" target="_blank" ` +
        `rel="noopener noreferrer">${text(label === null ? target : label)}</a>`;
    }
    return text(`<${inner}>`);
  }

  /* mrkdwn → HTML that is safe to assign to innerHTML. */
  function mrkdwn(source, ctx) {
    ctx = ctx || plainContext();
    const held = [];
    const hold = (html) => `\uE000${held.push(html) - 1}\uE001`;
    let s = String(source == null ? "" : source).replace(/[\uE000\uE001]/g, "");
    // 1. Slack markup is set aside, rendered from escaped parts.
    s = s.replace(/<([^<>\n]*)>/g, (_, inner) => hold(token(inner, ctx)));
    // 2. Everything else is text: escaped before any tag is added.
    s = escapeHtml(unescapeSlack(s));
    // 3. Formatting, on escaped text. Code first, so nothing inside it is formatted.
    s = s.replace(/```\n?([\s\S]*?)\n?```/g, (_, code) => hold(`<pre class="bk-pre">${code}</pre>`));
    s = s.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code class="bk-code">${code}</code>`));
    s = s.replace(/(^|[^\w*])\*(?!\s)([^*\n]*?[^\s*])\*(?!\w)/g, "$1<b>$2</b>");
    s = s.replace(/(^|[^\w_])_(?!\s)([^_\n]*?[^\s_])_(?!\w)/g, "$1<i>$2</i>");
    s = s.replace(/(^|[^\w~])~(?!\s)([^~\n]*?[^\s~])~(?!\w)/g, "$1<s>$2</s>");
    s = s.replace(/^&gt; ?(.*)$/gm, '<span class="bk-quote">$1</span>');
    s = emojify(s).replace(/\n/g, "<br>");
    for (let depth = 0; depth < 4 && HELD.test(s); depth += 1) {
      s = s.replace(HOLD, (_, index) => held[Number(index)]);
    }
    return s;
  }

  function plainContext() {
    return { me: null, userName: () => null, channelName: () => null, groupHandle: () => null };
  }

  /* ----------------------------------------------------------------------------- DOM */

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function textNode(object, ctx, tag, className) {
    const node = el(tag || "div", className);
    if (!object) return node;
    if (object.type === "mrkdwn") {
      node.innerHTML = mrkdwn(object.text, ctx);
      node.classList.add("bk-mrkdwn");
    } else {
      node.textContent = object.emoji === false ? object.text : emojifyPlain(object.text || "");
    }
    return node;
  }

  function plainText(object) {
    if (!object) return "";
    return object.emoji === false ? object.text : emojifyPlain(object.text || "");
  }

  function button(element, blockId, ctx) {
    const node = el("button", "bk-button", plainText(element.text));
    node.type = "button";
    if (element.style === "primary" || element.style === "danger") {
      node.classList.add(`bk-button-${element.style}`);
    }
    node.dataset.actionId = element.action_id || "";
    node.dataset.blockId = blockId;
    if (element.url) node.title = element.url;
    if (!ctx.onButton) {
      node.disabled = true;
      return node;
    }
    node.addEventListener("click", () => ctx.onButton({ element, blockId, node }));
    return node;
  }

  function accessory(element, blockId, ctx) {
    if (element.type === "button") return button(element, blockId, ctx);
    if (element.type === "image") return imagePlaceholder(element.alt_text, "bk-accessory-image");
    const chip = el("span", "bk-unsupported", element.type);
    chip.title = "not interactive in the local workspace";
    return chip;
  }

  function imagePlaceholder(alt, className) {
    const node = el("span", `bk-image ${className || ""}`);
    node.setAttribute("role", "img");
    node.setAttribute("aria-label", alt || "image");
    node.title = alt || "image";
    return node;
  }

  function blockIdOf(block, index) {
    return block.block_id || `block-${index}`;
  }

  function section(block, blockId, ctx) {
    const node = el("div", "bk-section");
    const body = el("div", "bk-section-body");
    if (block.text) body.append(textNode(block.text, ctx, "div", "bk-text"));
    if (Array.isArray(block.fields) && block.fields.length) {
      const grid = el("div", "bk-fields");
      for (const field of block.fields) grid.append(textNode(field, ctx, "div", "bk-field"));
      body.append(grid);
    }
    node.append(body);
    if (block.accessory) {
      const side = el("div", "bk-accessory");
      side.append(accessory(block.accessory, blockId, ctx));
      node.append(side);
    }
    return node;
  }

  function contextBlock(block, ctx) {
    const node = el("div", "bk-context");
    for (const element of block.elements || []) {
      if (element.type === "image") node.append(imagePlaceholder(element.alt_text, "bk-context-image"));
      else node.append(textNode(element, ctx, "span", "bk-context-item"));
    }
    return node;
  }

  function actionsBlock(block, blockId, ctx) {
    const node = el("div", "bk-actions");
    for (const element of block.elements || []) node.append(accessory(element, blockId, ctx));
    return node;
  }

  function richText(block) {
    const node = el("div", "bk-text");
    const walk = (items) => (items || []).map((item) => {
      if (item.type === "text") return item.text;
      if (item.type === "link") return item.text || item.url;
      if (item.elements) return walk(item.elements);
      return "";
    }).join("");
    node.textContent = walk(block.elements);
    return node;
  }

  /* ------------------------------------------------------------------- input blocks */

  function option(element) {
    return { value: element.value, label: plainText(element.text) };
  }

  function optionsOf(element) {
    if (Array.isArray(element.options)) return element.options;
    return (element.option_groups || []).flatMap((group) => group.options || []);
  }

  function inputElement(element, id, ctx) {
    const type = element.type;
    const placeholder = element.placeholder ? plainText(element.placeholder) : "";
    if (type === "plain_text_input" || type === "email_text_input" || type === "url_text_input") {
      const field = element.multiline ? el("textarea", "bk-input") : el("input", "bk-input");
      if (!element.multiline) field.type = type === "email_text_input" ? "email" : "text";
      if (element.multiline) field.rows = 4;
      field.id = id;
      field.value = element.initial_value || "";
      if (placeholder) field.placeholder = placeholder;
      if (element.max_length) field.maxLength = element.max_length;
      return [field, () => field.value];
    }
    if (type === "number_input") {
      const field = el("input", "bk-input");
      field.type = "number";
      field.id = id;
      field.step = element.is_decimal_allowed ? "any" : "1";
      if (element.min_value != null) field.min = element.min_value;
      if (element.max_value != null) field.max = element.max_value;
      field.value = element.initial_value || "";
      if (placeholder) field.placeholder = placeholder;
      return [field, () => (field.value === "" ? null : field.value)];
    }
    if (type === "static_select" || type === "users_select" || type === "conversations_select" ||
        type === "channels_select" || type === "multi_static_select") {
      const field = el("select", "bk-input bk-select");
      field.id = id;
      const multiple = type === "multi_static_select";
      field.multiple = multiple;
      let choices;
      let initial;
      if (type === "users_select") {
        choices = ctx.users().map((u) => ({ value: u.id, label: u.name }));
        initial = element.initial_user;
      } else if (type === "static_select" || multiple) {
        choices = optionsOf(element).map(option);
        initial = multiple
          ? (element.initial_options || []).map((o) => o.value)
          : element.initial_option && element.initial_option.value;
      } else {
        choices = ctx.channels().map((c) => ({ value: c.id, label: `#${c.name}` }));
        initial = element.initial_conversation || element.initial_channel;
      }
      if (!multiple) {
        const blank = el("option", "", placeholder || "Choose…");
        blank.value = "";
        field.append(blank);
      }
      for (const choice of choices) {
        const item = el("option", "", choice.label);
        item.value = choice.value;
        item.selected = multiple ? (initial || []).includes(choice.value) : choice.value === initial;
        field.append(item);
      }
      const read = multiple
        ? () => Array.from(field.selectedOptions).map((o) => o.value)
        : () => (field.value === "" ? null : field.value);
      return [field, read];
    }
    if (type === "checkboxes" || type === "radio_buttons") {
      const group = el("div", "bk-choices");
      group.id = id;
      group.setAttribute("role", type === "checkboxes" ? "group" : "radiogroup");
      const initial = type === "checkboxes"
        ? (element.initial_options || []).map((o) => o.value)
        : [element.initial_option && element.initial_option.value];
      const boxes = [];
      optionsOf(element).forEach((choice, index) => {
        const label = el("label", "bk-choice");
        const box = el("input");
        box.type = type === "checkboxes" ? "checkbox" : "radio";
        box.name = id;
        box.value = choice.value;
        box.id = `${id}-${index}`;
        box.checked = initial.includes(choice.value);
        const words = el("span", "bk-choice-text");
        words.append(textNode(choice.text, ctx, "span"));
        if (choice.description) words.append(textNode(choice.description, ctx, "span", "bk-choice-hint"));
        label.append(box, words);
        group.append(label);
        boxes.push(box);
      });
      const read = type === "checkboxes"
        ? () => boxes.filter((b) => b.checked).map((b) => b.value)
        : () => (boxes.find((b) => b.checked) || { value: null }).value;
      return [group, read];
    }
    if (type === "datepicker" || type === "timepicker") {
      const field = el("input", "bk-input");
      field.type = type === "datepicker" ? "date" : "time";
      field.id = id;
      field.value = element.initial_date || element.initial_time || "";
      return [field, () => (field.value === "" ? null : field.value)];
    }
    return [el("div", "bk-unsupported", `${type} (not supported here)`), null];
  }

  function inputBlock(block, blockId, index, ctx) {
    const node = el("div", "bk-input-block");
    node.dataset.blockId = blockId;
    const id = `input-${index}-${blockId.replace(/[^\w-]/g, "_")}`;
    const label = el("label", "bk-label");
    label.htmlFor = id;
    label.append(document.createTextNode(plainText(block.label)));
    if (block.optional) label.append(el("span", "bk-optional", " (optional)"));
    const [field, read] = inputElement(block.element || {}, id, ctx);
    node.append(label, field);
    if (block.hint) node.append(el("div", "bk-hint", plainText(block.hint)));
    const error = el("div", "bk-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    node.append(error);
    if (read && ctx.fields) ctx.fields[blockId] = { read, error, node };
    return node;
  }

  /* ------------------------------------------------------------------------- blocks */

  function block(blockJson, index, ctx) {
    const blockId = blockIdOf(blockJson, index);
    let node;
    switch (blockJson.type) {
      case "header":
        node = el("div", "bk-header", plainText(blockJson.text));
        break;
      case "section":
        node = section(blockJson, blockId, ctx);
        break;
      case "divider":
        node = el("hr", "bk-divider");
        break;
      case "context":
        node = contextBlock(blockJson, ctx);
        break;
      case "actions":
        node = actionsBlock(blockJson, blockId, ctx);
        break;
      case "input":
        node = inputBlock(blockJson, blockId, index, ctx);
        break;
      case "image":
        node = el("div", "bk-image-block");
        if (blockJson.title) node.append(el("div", "bk-image-title", plainText(blockJson.title)));
        node.append(imagePlaceholder(blockJson.alt_text, "bk-image-large"));
        break;
      case "rich_text":
        node = richText(blockJson);
        break;
      default:
        node = el("div", "bk-unsupported", `${blockJson.type} block`);
    }
    node.classList.add("bk-block");
    node.dataset.blockId = blockId;
    return node;
  }

  /* Blocks → a fragment; ctx.fields (when given) collects each input's reader by block_id. */
  function renderBlocks(blocks, ctx) {
    const fragment = document.createDocumentFragment();
    (blocks || []).forEach((b, index) => fragment.append(block(b, index, ctx)));
    return fragment;
  }

  /* Put `errors` (block_id → message) under their inputs; returns how many were shown. */
  function showErrors(fields, errors) {
    let shown = 0;
    for (const [blockId, field] of Object.entries(fields)) {
      const message = errors && errors[blockId];
      field.error.textContent = message || "";
      field.error.hidden = !message;
      field.node.classList.toggle("bk-invalid", Boolean(message));
      if (message) shown += 1;
    }
    return shown;
  }

  function readValues(fields) {
    const values = {};
    for (const [blockId, field] of Object.entries(fields)) values[blockId] = field.read();
    return values;
  }

  window.BlockKit = {
    escapeHtml,
    emojifyPlain,
    mrkdwn,
    plainText,
    renderBlocks,
    showErrors,
    readValues,
    textNode,
  };
})();
