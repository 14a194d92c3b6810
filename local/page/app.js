"use strict";
// Taskwire's local page: sign in, pick a project, see and change its tasks, and watch the
// websocket's events arrive. Plain JS, no build step. The tokens live in this page's memory
// only: never in a URL (the socket takes its token as a subprotocol), in storage or in a log.

const state = {
  access: null,
  refresh: null,
  username: null,
  projects: new Map(), // id -> project, as GET /projects/ shows it (with the caller's role)
  projectId: null, // the project shown
  tasks: new Map(), // id -> task, of the project shown
  deleted: new Set(), // its tasks deleted while shown: a late list answer must not revive them
  members: [],
  seq: new Map(), // project id -> last seq received: the cursor `?since=` resumes from
  socket: null,
  previous: null, // the socket being replaced by one with a fresh token
  connectedOnce: false,
  retries: 0,
  timers: { refresh: null, reconnect: null },
  refreshing: null,
};

const LOG_LIMIT = 200;
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// --- HTTP -------------------------------------------------------------------------------------

function request(method, path, body, withToken = true) {
  const headers = { Accept: "application/json" };
  if (withToken && state.access) headers.Authorization = `Bearer ${state.access}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) init.body = JSON.stringify(body);
  return fetch(path, init);
}

async function api(method, path, body) {
  let response = await request(method, path, body);
  if (response.status === 401 && (await refreshTokens())) {
    response = await request(method, path, body);
  }
  if (response.status === 401) {
    signOut("Your session has ended: sign in again.");
  }
  const data = response.status === 204 ? null : await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

async function listAll(path) {
  // Every page of a list: `next` is an absolute URL of this origin.
  const rows = [];
  let next = path;
  while (next) {
    const page = await api("GET", next);
    rows.push(...page.results);
    const url = page.next && new URL(page.next, location.href);
    next = url && url.pathname + url.search;
  }
  return rows;
}

function describeError(error) {
  if (!(error instanceof ApiError)) return String(error.message || error);
  const body = error.body;
  if (body.detail) return String(body.detail);
  const lines = Object.entries(body).map(([field, messages]) => {
    const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
    return field === "non_field_errors" ? text : `${field}: ${text}`;
  });
  return lines.join("\n") || error.message;
}

// --- Tokens -----------------------------------------------------------------------------------

async function signIn(username, password) {
  const response = await request("POST", "/auth/token/", { username, password }, false);
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) throw new Error("Wrong username or password.");
  if (response.status === 429) {
    const wait = response.headers.get("Retry-After");
    throw new Error(`Too many attempts: try again${wait ? ` in ${wait} s` : " later"}.`);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  setTokens(data);
  state.username = (await api("GET", "/auth/me/")).username;
}

function setTokens(data) {
  state.access = data.access;
  if (data.refresh) state.refresh = data.refresh; // rotated: the old one is revoked
  clearTimeout(state.timers.refresh);
  const expires = tokenExpiry(state.access);
  if (expires && state.refresh) {
    const wait = Math.max(5000, expires - Date.now() - 60000); // a minute before it expires
    state.timers.refresh = setTimeout(refreshTokens, wait);
  }
}

function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  } catch {
    return null;
  }
}

function refreshTokens() {
  // One refresh at a time: requests that all got 401 share it.
  if (!state.refresh) return Promise.resolve(false);
  if (!state.refreshing) {
    const refresh = state.refresh;
    state.refreshing = request("POST", "/auth/token/refresh/", { refresh }, false)
      .then(async (response) => {
        if (!response.ok || state.refresh !== refresh) return false;
        setTokens(await response.json());
        renewSocket();
        return true;
      })
      .catch(() => false)
      .finally(() => {
        state.refreshing = null;
      });
  }
  return state.refreshing;
}

function signOut(reason) {
  if (state.refresh && !reason) {
    // The refresh token is revoked on the server (POST /auth/logout/), not only forgotten here.
    const body = JSON.stringify({ refresh: state.refresh });
    const headers = { "Content-Type": "application/json" };
    fetch("/auth/logout/", { method: "POST", headers, body }).catch(() => {});
  }
  const socket = state.socket;
  state.socket = null; // its close is ours, not one to recover from
  if (socket) socket.close(1000);
  retirePrevious();
  clearTimeout(state.timers.refresh);
  clearTimeout(state.timers.reconnect);
  Object.assign(state, { access: null, refresh: null, username: null, projectId: null });
  Object.assign(state, { connectedOnce: false, retries: 0 });
  state.projects.clear();
  state.tasks.clear();
  state.seq.clear();
  $("log").replaceChildren();
  $("app-view").hidden = true;
  $("sign-in-view").hidden = false;
  for (const id of ["whoami", "connection", "sign-out"]) $(id).hidden = true;
  $("sign-in-error").textContent = reason || "";
}

// --- The websocket ------------------------------------------------------------------------------

function connect(renewal = false) {
  clearTimeout(state.timers.reconnect);
  const url = new URL("/ws/notifications/", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const since = [...state.seq].map(([project, seq]) => `${project}:${seq}`).join(",");
  if (since) url.search = `?since=${since}`; // what we missed comes first, in order
  const token = state.access;
  const socket = new WebSocket(url, ["bearer", token]);
  state.socket = socket;
  socket.addEventListener("open", () => {
    if (state.socket !== socket) return;
    state.retries = 0;
    setConnection("live");
    retirePrevious();
    if (state.connectedOnce && !renewal) {
      logNotice("reconnected", since ? `resuming after ${since} (project:seq)` : "");
      reload(); // what no cursor covers: new projects, the list
    }
    state.connectedOnce = true;
  });
  socket.addEventListener("message", (message) => {
    // The socket being renewed still counts until the next is open; seq drops any repeat.
    if (state.socket === socket || state.previous === socket) receive(JSON.parse(message.data));
  });
  socket.addEventListener("close", (event) => {
    if (state.socket === socket) closed(event.code, token);
  });
}

function renewSocket() {
  // A socket closes (4401) when the token it opened with expires: after each refresh the next
  // one opens with the fresh token, resuming from the cursor, and the old one goes once it is.
  if (!state.socket || state.previous) return;
  state.previous = state.socket;
  connect(true);
}

function retirePrevious() {
  const previous = state.previous;
  state.previous = null;
  if (previous) previous.close(1000);
}

async function closed(code, token) {
  state.socket = null;
  retirePrevious();
  setConnection("offline");
  if (code === 4401) {
    // The token expired or was refused: a fresh one, or sign in again.
    if (token === state.access && !(await refreshTokens())) {
      signOut("Your session has ended: sign in again.");
      return;
    }
    connect();
    return;
  }
  if (!state.access) return;
  const wait = code === 4429 ? 15000 : Math.min(30000, 1000 * 2 ** state.retries++);
  logNotice("disconnected", `code ${code}; reconnecting in ${Math.round(wait / 1000)} s`);
  state.timers.reconnect = setTimeout(connect, wait);
}

function setConnection(status) {
  const badge = $("connection");
  badge.hidden = false;
  badge.textContent = status;
  badge.classList.toggle("live", status === "live");
}

function receive(event) {
  switch (event.type) {
    case "ping":
    case "pong":
      return;
    case "error":
      logNotice("error", event.detail);
      return;
    case "unsubscribed":
      state.seq.delete(event.project);
      logNotice("unsubscribed", `${projectName(event.project)}: no longer a member`);
      forgetProject(event.project);
      return;
    case "resync.required":
      state.seq.delete(event.project);
      logNotice("resync.required", `${projectName(event.project)}: reloading`);
      reload();
      return;
  }
  if (typeof event.seq !== "number") return;
  const last = state.seq.get(event.project) || 0;
  if (event.seq <= last) return; // never twice (the server promises it; the page checks it)
  state.seq.set(event.project, event.seq);
  logEvent(event);
  apply(event);
}

// --- Events applied to what the page shows ------------------------------------------------------

function apply(event) {
  const data = event.data || {};
  const shown = event.project === state.projectId;
  switch (event.type) {
    case "project.created":
      loadProjects();
      break;
    case "project.updated":
      if (state.projects.has(data.id)) {
        state.projects.set(data.id, { ...state.projects.get(data.id), ...data });
        renderProjects();
      }
      break;
    case "project.deleted":
      forgetProject(data.id);
      break;
    case "member.added":
    case "member.updated":
    case "member.removed":
      if (data.username === state.username) loadProjects();
      if (shown) loadMembers();
      break;
    case "task.created":
    case "task.updated":
      if (data.project === state.projectId) upsertTask(data, true);
      else if (state.tasks.delete(data.id)) renderTasks(); // moved to another project
      break;
    case "task.deleted":
      if (shown) removeTask(data.id);
      break;
    case "comment.created":
      if (shown && state.tasks.has(data.task)) refetchTask(data.task);
      break;
  }
}

function upsertTask(task, flash = false) {
  if (state.deleted.has(task.id)) return;
  const known = state.tasks.get(task.id);
  if (known && Date.parse(known.updated_at) > Date.parse(task.updated_at)) return; // older
  state.tasks.set(task.id, task);
  renderTasks(flash ? task.id : null);
}

function removeTask(id) {
  state.deleted.add(id);
  state.tasks.delete(id);
  renderTasks();
}

async function refetchTask(id) {
  try {
    upsertTask(await api("GET", `/tasks/${id}/`), true);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) removeTask(id);
  }
}

function forgetProject(id) {
  state.projects.delete(id);
  if (state.projectId === id) {
    state.projectId = null;
    state.tasks.clear();
    renderProject();
  }
  renderProjects();
}

// --- Loading ------------------------------------------------------------------------------------

async function loadProjects() {
  const projects = await listAll("/projects/?page_size=200");
  state.projects = new Map(projects.map((project) => [project.id, project]));
  if (state.projectId !== null && !state.projects.has(state.projectId)) {
    forgetProject(state.projectId);
  }
  renderProjects();
}

async function loadTasks() {
  const id = state.projectId;
  const tasks = await listAll(`/tasks/?project=${id}&page_size=200`);
  if (id !== state.projectId) return; // another project was picked meanwhile
  for (const task of tasks) upsertTask(task);
  renderTasks();
}

async function loadMembers() {
  const id = state.projectId;
  const members = await listAll(`/projects/${id}/members/?page_size=200`);
  if (id !== state.projectId) return;
  state.members = members;
  renderAssignees();
}

async function reload() {
  try {
    await loadProjects();
    if (state.projectId !== null) await Promise.all([loadTasks(), loadMembers()]);
  } catch (error) {
    logNotice("error", describeError(error));
  }
}

async function pickProject(id) {
  state.projectId = id;
  state.tasks.clear();
  state.deleted.clear();
  state.members = [];
  resetTaskForm();
  renderProjects();
  renderProject();
  try {
    await Promise.all([loadTasks(), loadMembers()]);
  } catch (error) {
    $("task-error").textContent = describeError(error);
  }
}

// --- Rendering (text only: nothing a user typed becomes markup) ---------------------------------

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function cell(child) {
  const td = element("td");
  td.append(child);
  return td;
}

function renderProjects() {
  const list = $("projects");
  const projects = [...state.projects.values()].sort((a, b) => a.name.localeCompare(b.name));
  list.replaceChildren(
    ...projects.map((project) => {
      const button = element("button", project.name);
      button.type = "button";
      button.dataset.project = project.id;
      button.setAttribute("aria-current", String(project.id === state.projectId));
      button.append(element("span", project.role, "role"));
      button.addEventListener("click", () => pickProject(project.id));
      const item = element("li");
      item.append(button);
      return item;
    }),
  );
  $("no-projects").hidden = projects.length > 0;
  nameLoggedProjects();
  renderProject();
}

function renderProject() {
  const project = state.projects.get(state.projectId);
  $("project-title").textContent = project ? project.name : "Pick a project";
  $("tasks").hidden = !project;
  $("task-form").hidden = !project || project.role === "viewer";
  if (!project) $("no-tasks").hidden = true;
  renderTasks();
}

function renderTasks(flashId = null) {
  const body = $("tasks").querySelector("tbody");
  const tasks = [...state.tasks.values()].sort((a, b) => a.id - b.id);
  const canEdit = state.projects.get(state.projectId)?.role !== "viewer";
  body.replaceChildren(
    ...tasks.map((task) => {
      const row = element("tr");
      row.dataset.task = task.id;
      if (task.id === flashId) row.className = "flash";
      const status = element("span", statusLabel(task.status), `status ${task.status}`);
      row.append(
        element("td", task.id),
        element("td", task.title),
        cell(status),
        element("td", task.assignee || "—"),
        element("td", formatDate(task.due_date)),
        element("td", task.comment_count),
      );
      const actions = element("td");
      if (canEdit) {
        const edit = element("button", "Edit");
        edit.type = "button";
        edit.addEventListener("click", () => editTask(task.id));
        actions.append(edit);
      }
      row.append(actions);
      return row;
    }),
  );
  $("no-tasks").hidden = state.projectId === null || tasks.length > 0;
}

function renderAssignees() {
  const select = $("task-form").elements.assignee;
  const chosen = select.value;
  const eligible = state.members.filter((member) => member.role !== "viewer");
  select.replaceChildren(
    element("option", "nobody"),
    ...eligible.map((member) => element("option", `${member.username} (${member.role})`)),
  );
  select.options[0].value = "";
  eligible.forEach((member, index) => {
    select.options[index + 1].value = member.username;
  });
  select.value = chosen;
}

function statusLabel(status) {
  return String(status).replace("_", " ");
}

function formatDate(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

function localInputValue(iso) {
  const date = new Date(iso);
  const offset = date.getTimezoneOffset() * 60000;
  return new Date(date.getTime() - offset).toISOString().slice(0, 16);
}

// --- The live log ---------------------------------------------------------------------------------

function logEvent(event) {
  const data = event.data || {};
  const project = state.projects.get(event.project);
  const what = {
    "task.created": () => `“${data.title}” (${statusLabel(data.status)})`,
    "task.updated": () =>
      `“${data.title}”: ${statusLabel(data.status)}, ${data.assignee || "unassigned"}`,
    "task.deleted": () => `task #${data.id}`,
    "comment.created": () => `on “${data.task_title}”: ${data.content}`,
    "project.created": () => `“${data.name}”`,
    "project.updated": () => `“${data.name}”`,
    "project.deleted": () => `project #${data.id}`,
    "member.added": () => `${data.username} as ${data.role}`,
    "member.updated": () => `${data.username} now ${data.role}`,
    "member.removed": () => `${data.username}`,
    "summary.generated": () => `${data.total} tasks, ${data.overdue} overdue`,
  }[event.type];
  const line = addLogLine("event", event.type, what ? what() : "", [
    formatTime(event.occurred_at),
    `${projectName(event.project)} #${event.seq}`,
    `by ${event.actor || "the system"}`,
  ]);
  Object.assign(line.dataset, { project: event.project, seq: event.seq, actor: event.actor || "" });
  if (!project) line.dataset.unnamed = "true"; // named once the project list has it
}

function projectName(id) {
  const project = state.projects.get(id);
  return project ? project.name : `project ${id}`;
}

function nameLoggedProjects() {
  for (const line of document.querySelectorAll("#log li[data-unnamed]")) {
    const id = Number(line.dataset.project);
    if (!state.projects.has(id)) continue;
    const meta = line.querySelector(".meta");
    meta.textContent = meta.textContent.replace(`project ${id} #`, `${projectName(id)} #`);
    delete line.dataset.unnamed;
  }
}

function logNotice(type, text) {
  addLogLine("notice", type, text, [formatTime(new Date().toISOString())]);
}

function addLogLine(kind, type, text, meta) {
  const line = element("li", null, kind);
  line.dataset.type = type;
  line.append(element("span", meta.join(" · "), "meta"), element("span", type, "type"));
  if (text) line.append(" ", element("span", text, "text"));
  const log = $("log");
  log.prepend(line); // newest first
  while (log.children.length > LOG_LIMIT) log.lastChild.remove();
  return line;
}

function formatTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

// --- The task form --------------------------------------------------------------------------------

function resetTaskForm() {
  const form = $("task-form");
  form.reset();
  form.elements.id.value = "";
  const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
  tomorrow.setHours(9, 0, 0, 0);
  form.elements.due_date.value = localInputValue(tomorrow.toISOString());
  $("task-form-title").textContent = "New task";
  $("task-save").textContent = "Create task";
  $("task-cancel").hidden = true;
  $("task-error").textContent = "";
}

function editTask(id) {
  const task = state.tasks.get(id);
  if (!task) return;
  const fields = $("task-form").elements;
  fields.id.value = task.id;
  fields.title.value = task.title;
  fields.description.value = task.description;
  fields.status.value = task.status;
  fields.assignee.value = task.assignee || "";
  fields.due_date.value = localInputValue(task.due_date);
  $("task-form-title").textContent = `Edit task #${task.id}`;
  $("task-save").textContent = "Save changes";
  $("task-cancel").hidden = false;
  $("task-error").textContent = "";
  fields.title.focus();
}

async function saveTask(event) {
  event.preventDefault();
  const fields = event.target.elements;
  const body = {
    title: fields.title.value,
    description: fields.description.value,
    status: fields.status.value,
    assignee: fields.assignee.value || null,
    due_date: new Date(fields.due_date.value).toISOString(),
  };
  const id = fields.id.value;
  $("task-save").disabled = true;
  try {
    const task = id
      ? await api("PATCH", `/tasks/${id}/`, body)
      : await api("POST", "/tasks/", { ...body, project: state.projectId });
    upsertTask(task, true);
    resetTaskForm();
  } catch (error) {
    $("task-error").textContent = describeError(error);
  } finally {
    $("task-save").disabled = false;
  }
}

// --- Start ------------------------------------------------------------------------------------------

async function submitSignIn(event) {
  event.preventDefault();
  const fields = event.target.elements;
  $("sign-in-error").textContent = "";
  try {
    await signIn(fields.username.value, fields.password.value);
  } catch (error) {
    $("sign-in-error").textContent = describeError(error);
    return;
  }
  fields.password.value = "";
  $("sign-in-view").hidden = true;
  $("app-view").hidden = false;
  $("whoami").textContent = `signed in as ${state.username}`;
  $("whoami").hidden = false;
  $("sign-out").hidden = false;
  connect();
  try {
    await loadProjects();
  } catch (error) {
    logNotice("error", describeError(error));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", submitSignIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("task-form").addEventListener("submit", saveTask);
  $("task-cancel").addEventListener("click", resetTaskForm);
  resetTaskForm();
});
