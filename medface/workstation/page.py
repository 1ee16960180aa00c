"""The workstation's page: Vuetify widgets bound to a :class:`.app.Workstation`.

Forms are drawn from the state (``form_fields``, ``panel_controls``): one template per widget
kind, so a plugin's new command or panel needs no page code. Every element a user or a test
looks for has a stable ``id`` or ``data-testid``.
"""

from __future__ import annotations

VALUE_UPDATE = "{name} = {{...{name}, [f.name]: $event}}"  # replace the dict: the server sees the change


def testid(expression: str) -> str:
    """A ``data-testid`` attribute bound to a template expression (what tests and users' scripts find)."""
    return f':data-testid="{expression}"'


def build_page(app):
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    with SinglePageWithDrawerLayout(app.server, theme="dark", full_height=True) as layout:
        layout.title.set_text("medface workstation")
        layout.footer.hide()
        with layout.toolbar:
            v3.VChip("research software · not a medical device", size="small", color="warning", classes="ml-2")
            v3.VSpacer()
            v3.VBtn("Save scene (.mrb)", click=app.export_scene, prepend_icon="mdi-content-save",
                    variant="tonal", classes="mr-2", id="save-scene")
        with layout.drawer as drawer:
            drawer.width = 460
            _messages(v3)
            with v3.VTabs(v_model=("tab", "data"), density="compact", grow=True):
                v3.VTab("Data", value="data", id="tab-data")
                v3.VTab("Commands", value="commands", id="tab-commands")
                v3.VTab("Panels", value="panels", id="tab-panels")
                v3.VTab("Scene", value="scene", id="tab-scene")
            with v3.VWindow(v_model=("tab",)):
                with v3.VWindowItem(value="data"):
                    _data_tab(app, v3, html)
                with v3.VWindowItem(value="commands"):
                    _commands_tab(app, v3, html)
                with v3.VWindowItem(value="panels"):
                    _panels_tab(app, v3, html)
                with v3.VWindowItem(value="scene"):
                    _scene_tab(app, v3, html)
        with layout.content:
            with html.Div(style="height: calc(100vh - 64px); display: flex; position: relative;", id="views"):
                app.layouts.initialize_layout_grid(layout)
                _colour_legends(html)
    return layout


def _colour_legends(html) -> None:
    """A colour bar per colour-mapped model, over the bottom left of the views: name, array, range."""
    with html.Div(v_if="colour_legends.length", id="colour-legends",
                  style="position: absolute; left: 12px; bottom: 12px; z-index: 5; pointer-events: none;"):
        with html.Div(v_for="c in colour_legends", key="c.name", raw_attrs=[testid("'legend-' + c.name")],
                      style="background: rgba(0,0,0,0.6); color: white; padding: 4px 8px; margin-top: 4px; "
                            "border-radius: 4px; font-size: 12px; width: 240px;"):
            html.Div("{{ c.name }} · {{ c.array }}")
            html.Div(style=("{height: '10px', background: c.gradient, margin: '2px 0'}",))
            with html.Div(style="display: flex; justify-content: space-between;"):
                html.Span("{{ c.low.toPrecision(3) }}")
                html.Span("{{ c.high.toPrecision(3) }}")


def _messages(v3) -> None:
    v3.VAlert(v_if="error_text", text=("error_text",), type="error", density="compact", closable=True,
              classes="ma-2", id="error", click_close="error_text = ''")
    v3.VAlert(v_if="info_text", text=("info_text",), type="info", density="compact", closable=True,
              classes="ma-2", id="info", click_close="info_text = ''")
    v3.VAlert(v_for="b in broken_plugins", key="b", text=("'plugin not loaded: ' + b",), type="warning",
              density="compact", classes="ma-2")


def _data_tab(app, v3, html) -> None:
    with html.Div(classes="pa-2"):
        v3.VFileInput(v_model=("upload_files", None), label="Upload files into the data folder", multiple=True,
                      density="compact", show_size=True, id="upload")
        v3.VBtn("Refresh", click=app.refresh_data, size="small", variant="text", prepend_icon="mdi-refresh")
        with v3.VList(density="compact", id="data-list"):
            with v3.VListItem(v_for="e in data_entries", key="e.path", title=("e.path",),
                              subtitle=("e.category + ' · ' + e.size_mb + ' MB'",),
                              click=(app.load, "[e.path]"), raw_attrs=[testid("'data-' + e.path")]):
                with v3.Template(v_slot_append=True):
                    v3.VIcon("mdi-plus-box-outline", size="small")


def _field(v3, name: str, choices: str, f: str = "f") -> None:
    """One form field of any widget kind, bound to the state dict ``name``."""
    update = {"update_modelValue": VALUE_UPDATE.format(name=name)}
    # a slider for a bounded number with a default; a field (which may stay empty) otherwise
    slider = f"({f}.minimum !== null && {f}.maximum !== null && {f}.default !== null)"
    common = dict(label=(f"{f}.label + ({f}.units ? ' (' + {f}.units + ')' : '') + ({f}.required ? ' *' : '')",),
                  hint=(f"{f}.help",), density="compact", model_value=(f"{name}[{f}.name]",),
                  raw_attrs=[testid(f"'field-' + {f}.name")], **update)
    v3.VSelect(v_if=f"{f}.widget === 'file' || {f}.widget === 'folder'", items=(f"{choices}[{f}.name] || []",),
               clearable=True, **common)
    v3.VSelect(v_if=f"{f}.widget === 'select'", items=(f"{f}.choices",), **common)
    v3.VCheckbox(v_if=f"{f}.widget === 'checkbox'", **common)
    v3.VTextField(v_if=f"{f}.widget === 'text'", **common)
    v3.VTextField(v_if=f"({f}.widget === 'number' || {f}.widget === 'integer') && !{slider}", type="number", step=(f"{f}.step || 'any'",),
                  **{**common, "update_modelValue": f"{name} = {{...{name}, [{f}.name]: $event === '' ? null : "
                                                    f"Number($event)}}"})
    v3.VSlider(v_if=f"({f}.widget === 'number' || {f}.widget === 'integer') && {slider}",
               min=(f"{f}.minimum",), max=(f"{f}.maximum",), step=(f"{f}.step || 0",), thumb_label=True,
               **{**common, "label": (f"{f}.label + ': ' + {name}[{f}.name] + ({f}.units ? ' ' + {f}.units : '')",)})


def _commands_tab(app, v3, html) -> None:
    with html.Div(classes="pa-2"):
        v3.VSelect(v_model=("command_id", None), items=("commands",), label="Command", density="compact",
                   id="command-select")
        html.Div("{{ command_help }}", v_if="command_id", classes="text-caption mb-2")
        with html.Div(v_for="f in form_fields", key="f.name", v_show="!f.advanced || show_advanced"):
            _field(v3, "form_values", "form_choices")
        v3.VSwitch(v_if="command_id", v_model=("show_advanced", False), label="advanced parameters",
                   density="compact", hide_details=True)
        with html.Div(classes="d-flex ga-2 my-2"):
            v3.VBtn("Run", click=(app.run_command, "[form_values]"), color="primary", disabled=("job_running",),
                    id="run", prepend_icon="mdi-play")
            v3.VBtn("Cancel", click=app.cancel_command, disabled=("!job_running",), id="cancel",
                    prepend_icon="mdi-stop")
        v3.VProgressLinear(v_if="job_running", indeterminate=True, color="primary")
        html.Div("{{ job_progress }}", v_if="job", classes="text-caption", id="job-progress")
        _job_result(v3, html)


def _job_result(v3, html, where: str = "job", shown: str = "job") -> None:
    """The last run's card: state, error, warnings, summary, figures, report link; element ids
    start with ``where`` (``job-result``, ``job-error``; ``panel-job-result`` in the panels tab)."""
    prefix = "" if where == "job" else f"{where}-"
    with v3.VCard(v_if=f"{shown} && job.state !== 'running'", classes="mt-2", id=f"{where}-result", variant="outlined"):
        v3.VCardTitle("{{ job.command }}: {{ job.state }} ({{ job.seconds }} s)")
        v3.VAlert(v_if="job.error", text=("job.error",), type=("job.state === 'refused' ? 'warning' : 'error'",),
                  density="compact", id=f"{where}-error")
        # warnings first: an off-distribution photo or a synthetic-only model must be read before the ranking
        v3.VAlert(v_for="w in job.warnings", key="w", text=("w",), type="warning", density="compact",
                  variant="tonal", classes="ma-1", raw_attrs=[testid(f"'{prefix}warning'")])
        with v3.VTable(density="compact", v_if="job.summary.length", id=f"{where}-summary"):
            with html.Tbody():
                with html.Tr(v_for="row in job.summary", key="row[0]"):
                    html.Td("{{ row[0] }}")
                    html.Td("{{ row[1] }}", raw_attrs=[testid(f"'{prefix}summary-' + row[0]")])
        with html.Div(v_for="fig in job.figures", key="fig.title", classes="pa-2"):
            html.Div("{{ fig.title }}", classes="text-caption")
            html.Img(src=("fig.src",), style="max-width: 100%;")
        with v3.VCardActions(v_if="job.report"):
            v3.VBtn("Open report", href=("job.report",), target="_blank", size="small")


def _panels_tab(app, v3, html) -> None:
    with html.Div(classes="pa-2"):
        html.Div("No plugin offers a live panel.", v_if="!panels.length", classes="text-caption")
        v3.VSelect(v_if="panels.length", v_model=("panel_id", None), items=("panels",), label="Panel",
                   density="compact", id="panel-select")
        html.Div("{{ panel_help }}", v_if="panel_id", classes="text-caption mb-2")
        with html.Div(v_for="f in panel_inputs", key="f.name"):
            v3.VSelect(label=("f.label + (f.required ? ' *' : '')",), items=("panel_choices[f.name] || []",),
                       model_value=("panel_picks[f.name]",), density="compact", clearable=True,
                       update_modelValue=VALUE_UPDATE.format(name="panel_picks"),
                       raw_attrs=[testid("'pick-' + f.name")])
        v3.VBtn("Open panel", v_if="panel_id", click=(app.open_panel, "[panel_picks]"), color="primary",
                loading=("panel_busy",), id="open-panel", classes="mb-2")
        with html.Div(v_if="panel_open", id="panel-controls"):
            with html.Div(v_for="f in panel_controls", key="f.name"):
                _field(v3, "panel_values", "{}")
            html.Div("update {{ panel_ms }} ms", classes="text-caption", id="panel-ms")
            with html.Div(classes="d-flex ga-2 my-2 flex-wrap"):
                v3.VBtn("{{ a.title }}", v_for="a in panel_actions", key="a.command", title=("a.help",),
                        click=(app.run_panel_action, "[a.command]"), disabled=("job_running",), color="primary",
                        size="small", prepend_icon="mdi-play", raw_attrs=[testid("'action-' + a.command")])
                v3.VBtn("Export meshes (STL)", click=app.export_panel_meshes, size="small", variant="tonal",
                        prepend_icon="mdi-download", id="export-stl")
            v3.VProgressLinear(v_if="job_running && job && job.from_panel", indeterminate=True, color="primary")
            html.Div("{{ job_progress }}", v_if="job && job.from_panel", classes="text-caption", id="panel-job-progress")
            _job_result(v3, html, where="panel-job", shown="job && job.from_panel")
            with v3.VTable(density="compact", id="panel-summary"):
                with html.Tbody():
                    with html.Tr(v_for="row in panel_summary", key="row[0]"):
                        html.Td("{{ row[0] }}")
                        html.Td("{{ row[1] }}", raw_attrs=[testid("'panel-' + row[0]")])


def _scene_tab(app, v3, html) -> None:
    with html.Div(classes="pa-2"):
        with html.Div(classes="d-flex ga-2 mb-2 flex-wrap"):
            v3.VBtn("Place landmarks", click=app.start_placing, v_if="!placing", size="small",
                    prepend_icon="mdi-map-marker-plus", id="place")
            v3.VBtn("Stop placing", click=app.stop_placing, v_if="placing", size="small", color="primary",
                    id="stop-placing")
            v3.VBtn("Clear scene", click=app.clear_scene, size="small", variant="text", id="clear-scene")
        with v3.VList(density="compact", id="scene-list"):
            with v3.VListItem(v_for="n in scene_nodes", key="n.id", title=("n.name",),
                              subtitle=("n.kind + (n.path ? ' · ' + n.path : '')",),
                              raw_attrs=[testid("'node-' + n.name")]):
                with v3.Template(v_slot_append=True):
                    v3.VBtn(icon=("n.visible ? 'mdi-eye' : 'mdi-eye-off'",), size="x-small", variant="text",
                            click=(app.set_visible, "[n.id, !n.visible]"))
                    v3.VBtn(icon="mdi-content-save", size="x-small", variant="text", v_if="n.kind === 'landmarks'",
                            click=(app.save_landmarks, "[n.id]"), raw_attrs=[testid("'save-' + n.name")])
                    v3.VBtn(icon="mdi-delete", size="x-small", variant="text", click=(app.remove_node, "[n.id]"))
