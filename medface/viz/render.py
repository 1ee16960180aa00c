"""Draw a :class:`~medface.viz.scene.Scene`: PNG (off-screen), panels, a window, or standalone HTML.

Off-screen rendering uses VTK's EGL or OSMesa back end, so it works without a display.
The HTML export writes one self-contained file (a small WebGL viewer and the scene's data
inline): it loads nothing from the network and opens in any current browser.
"""

from __future__ import annotations

import base64
import html as _html
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import OutputError, ParameterError
from .scene import Scene
from .views import VIEW_TITLES, Camera, as_bounds, camera_for, check_view


class NoDisplayError(ParameterError):
    """An interactive window was asked for where there is no display."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)


def _check_size(size, what="size") -> tuple[int, int]:
    try:
        w, h = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be (width, height) in pixels, got {size!r}", parameter=what) from None
    if not (16 <= w <= 16384 and 16 <= h <= 16384):
        raise ParameterError(f"{what} must be 16..16384 pixels per side, got {w}x{h}", parameter=what)
    return w, h


def _out_path(path) -> Path:
    """The output path, its folder created as medface's other writers do."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {path.parent} ({exc.strerror})", path=path) from None
    return path


# --------------------------------------------------------------------------------------------
# pyvista drawing
def quiet_display_probe() -> None:
    """Without a display, VTK probes X before falling back to EGL and prints a warning ("bad X
    server connection") that means nothing to a user: keep it quiet."""
    if has_display():
        return
    try:
        from vtkmodules.vtkCommonCore import vtkLogger

        vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    except ImportError:  # pragma: no cover
        pass


def _plotter(size, *, off_screen=True, shape=(1, 1)):
    import pyvista as pv

    quiet_display_probe()
    plotter = pv.Plotter(off_screen=off_screen, window_size=list(size), shape=shape, border=False)
    if off_screen:
        # multisampling costs 3-4x on software GL (llvmpipe); FXAA smooths edges for almost nothing
        plotter.render_window.SetMultiSamples(0)
        for renderer in plotter.renderers:
            renderer.UseFXAAOn()
    return plotter


def _grab(plotter) -> np.ndarray:
    """Render once and read the RGB pixels (row 0 at the top), without pyvista's extra renders."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

    window = plotter.render_window
    window.Render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.ShouldRerenderOff()
    grab.Update()
    image = grab.GetOutput()
    w, h, _ = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, 3)[::-1].copy()


def _draw(plotter, scene: Scene) -> None:
    plotter.set_background(scene.background)
    for item in scene.items:
        if item.kind == "surface":
            kw = dict(opacity=item.opacity, reset_camera=False, render=False, name=None)
            has_normals = item.data.point_data.active_normals is not None if item.data.n_points else False
            if item.scalars is not None:
                is_image = item.scalar_bar_title is None
                kw.update(scalars=item.scalars, cmap=item.cmap, clim=item.clim, show_scalar_bar=not is_image,
                          lighting=not is_image)
                if not is_image:
                    kw["scalar_bar_args"] = {"title": item.scalar_bar_title, "vertical": True, "fmt": "%.1f",
                                             "position_x": 0.86, "position_y": 0.15, "height": 0.7, "width": 0.08,
                                             "color": "black", "title_font_size": 14, "label_font_size": 12}
            else:
                kw.update(color=item.color, specular=0.15, show_scalar_bar=False)
            kw["interpolation"] = "gouraud" if has_normals else "flat"
            plotter.add_mesh(item.data, **kw)
        elif item.kind == "lines":
            plotter.add_mesh(item.data, color=item.color, line_width=item.size, lighting=False, reset_camera=False,
                             render=False, show_scalar_bar=False)
        elif item.kind == "labels":
            plotter.add_point_labels(np.asarray(item.data), item.labels, font_size=int(item.size), show_points=False,
                                     shape_opacity=0.45, shape_color="white", text_color=item.color,
                                     always_visible=True, bold=False, reset_camera=False, render=False)


def _apply_camera(plotter, camera: Camera) -> None:
    cam = plotter.camera
    cam.position = camera.position
    cam.focal_point = camera.focal_point
    cam.up = camera.view_up
    if camera.parallel:
        plotter.enable_parallel_projection()
        cam.parallel_scale = camera.parallel_scale
    else:
        cam.view_angle = camera.view_angle
    plotter.renderer.reset_camera_clipping_range()


def _clip_to(cam, bounds) -> None:
    """Set the camera's clipping range to hold the box ``bounds`` (2x3: min, max corners)."""
    b = np.asarray(bounds, float)
    corners = np.array([[b[i, 0], b[j, 1], b[k, 2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    direction = np.asarray(cam.focal_point, float) - np.asarray(cam.position, float)
    direction /= np.linalg.norm(direction)
    depth = (corners - np.asarray(cam.position, float)) @ direction
    margin = 0.05 * max(float(np.ptp(depth)), 1.0)
    near = max(float(depth.min()) - margin, 1e-3 * max(float(depth.max()), 1.0))
    cam.clipping_range = (near, float(depth.max()) + margin)


def scene_camera(scene: Scene, view: str = "frontal", size=(800, 800), *, distance_factor: float = 3.0,
                 parallel: bool = True, bounds=None) -> Camera:
    """The camera :func:`render_png` uses for ``scene`` (for projecting points onto the image)."""
    check_view(view)
    w, h = _check_size(size)
    b = scene.bounds() if bounds is None else as_bounds(bounds)
    return camera_for(view, b, distance_factor=distance_factor, parallel=parallel, aspect=w / h)


def render_image(scene: Scene, view: str = "frontal", size=(800, 800), *, distance_factor: float = 3.0,
                 parallel: bool = True) -> tuple[np.ndarray, Camera]:
    """Render off-screen; returns the RGB image ``(height, width, 3)`` uint8 and the camera used."""
    camera = scene_camera(scene, view, size, distance_factor=distance_factor, parallel=parallel)
    plotter = _plotter(_check_size(size))
    try:
        _draw(plotter, scene)
        _apply_camera(plotter, camera)
        img = _grab(plotter)
    finally:
        plotter.close()
    return img, camera


def render_png(scene: Scene, path, view: str = "frontal", size=(800, 800), *, distance_factor: float = 3.0,
               parallel: bool = True) -> Path:
    """Render ``scene`` off-screen from an anatomical ``view`` into a PNG; returns the path."""
    from PIL import Image

    path = _out_path(path)
    img, _ = render_image(scene, view, size, distance_factor=distance_factor, parallel=parallel)
    Image.fromarray(img).save(path)
    return path


def render_panels(scenes: list[Scene], path, views="frontal", titles=None, shape=None, *,
                  size=(400, 400), link_cameras: bool = True, parallel: bool = True) -> Path:
    """Side-by-side panels (before/after, a grid of variants) in one PNG; returns the path.

    ``views`` is one view for all panels or one per panel; ``shape = (rows, cols)``
    (default one row); ``size`` is one panel's size. With ``link_cameras`` every panel is
    framed on the union of all scenes' bounds, so the same anatomy is at the same place and
    scale in each panel (and, in a window, the cameras move together).
    """
    from PIL import Image

    scenes = list(scenes)
    if not scenes:
        raise ParameterError("render_panels needs at least one scene", parameter="scenes")
    n = len(scenes)
    views = [views] * n if isinstance(views, str) else list(views)
    if len(views) != n:
        raise ParameterError(f"{len(views)} views for {n} scenes", parameter="views")
    for v in views:
        check_view(v)
    if titles is not None and len(titles) != n:
        raise ParameterError(f"{len(titles)} titles for {n} scenes", parameter="titles")
    rows, cols = shape if shape is not None else (1, n)
    if rows * cols < n:
        raise ParameterError(f"shape {rows}x{cols} has fewer than {n} panels", parameter="shape")
    w, h = _check_size(size)
    path = _out_path(path)
    shared = None
    if link_cameras:
        boxes = np.array([s.bounds() for s in scenes])
        shared = np.stack([boxes[:, 0].min(0), boxes[:, 1].max(0)])
    plotter = _plotter((w * cols, h * rows), shape=(rows, cols))
    try:
        for k, scene in enumerate(scenes):
            plotter.subplot(k // cols, k % cols)
            _draw(plotter, scene)
            camera = scene_camera(scene, views[k], (w, h), parallel=parallel, bounds=shared)
            _apply_camera(plotter, camera)
            if titles is not None:
                plotter.add_text(str(titles[k]), position="upper_edge", font_size=10, color="black")
        if link_cameras and len(set(views)) == 1 and n > 1:
            plotter.link_views()
            # one camera now serves every panel: its clipping range must hold all scenes, not
            # only the first one's (flat scenes at other depths would be clipped away)
            _clip_to(plotter.camera, shared)
        img = _grab(plotter)
    finally:
        plotter.close()
    Image.fromarray(img).save(path)
    return path


def has_display() -> bool:
    """Whether an interactive window can open (a display on Linux; assumed on macOS/Windows)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show(scene: Scene, view: str = "frontal", size=(1000, 900), *, parallel: bool = True) -> None:
    """Open an interactive window (rotate with the mouse); raises :class:`NoDisplayError` without a display."""
    if not has_display():
        raise NoDisplayError("no display to open a window on (DISPLAY is not set)",
                             hint="write a picture with --png OUT.png or an interactive file with --html OUT.html")
    camera = scene_camera(scene, view, size, parallel=parallel)
    plotter = _plotter(_check_size(size), off_screen=False)
    _draw(plotter, scene)
    _apply_camera(plotter, camera)
    plotter.add_text(VIEW_TITLES[view], position="upper_left", font_size=10, color="black")
    plotter.show()


# --------------------------------------------------------------------------------------------
# standalone HTML
def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).decode()


def _colormap(name: str):
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ParameterError(f"unknown colour map {name!r}", parameter="cmap") from None


def _vertex_colors(item) -> np.ndarray:
    n = item.data.n_points
    if item.scalars is None:
        return np.tile((np.asarray(item.color) * 255).round().astype(np.uint8), (n, 1))
    values = np.asarray(item.data.point_data[item.scalars], float)
    lo, hi = item.clim
    t = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    rgba = _colormap(item.cmap)(np.nan_to_num(t, nan=0.5))
    return (rgba[:, :3] * 255).round().astype(np.uint8)


def _triangles(poly) -> np.ndarray:
    faces = np.asarray(poly.faces)
    if faces.size == 0:
        return np.zeros((0, 3), np.uint32)
    if not poly.is_all_triangles:
        poly = poly.triangulate()
        faces = np.asarray(poly.faces)
    return faces.reshape(-1, 4)[:, 1:].astype(np.uint32)


def _segments(poly) -> np.ndarray:
    lines = np.asarray(poly.lines)
    out, k = [], 0
    while k < len(lines):
        m = int(lines[k])
        ids = lines[k + 1:k + 1 + m]
        out.append(np.column_stack([ids[:-1], ids[1:]]))
        k += m + 1
    return np.concatenate(out).astype(np.uint32) if out else np.zeros((0, 2), np.uint32)


def _html_payload(scene: Scene, camera: Camera) -> dict:
    from .scene import vertex_normals

    objects, labels, bars = [], [], []
    for item in scene.items:
        if item.kind == "labels":
            labels += [{"text": t, "p": [round(float(c), 3) for c in p]} for t, p in zip(item.labels, item.data)]
            continue
        poly = item.data
        if poly.n_points == 0:
            continue
        pts = np.asarray(poly.points, np.float32)
        obj = {"name": item.name, "opacity": item.opacity, "positions": _b64(pts)}
        if item.kind == "surface":
            tri = _triangles(poly)
            if not len(tri):
                continue
            lit = not (item.scalars is not None and item.scalar_bar_title is None)
            normals = poly.point_data.active_normals
            normals = np.asarray(normals, np.float32) if normals is not None else vertex_normals(pts, tri.astype(np.int64))
            obj.update(mode="triangles", indices=_b64(tri), colors=_b64(_vertex_colors(item)),
                       normals=_b64(np.asarray(normals, np.float32)), lit=lit)
            if item.scalars is not None and item.scalar_bar_title is not None:
                cmap = _colormap(item.cmap)
                stops = [f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)}) {100 * t:.0f}%"
                         for t, (r, g, b, _) in ((t, cmap(t)) for t in np.linspace(0, 1, 11))]
                bars.append({"title": item.scalar_bar_title, "lo": item.clim[0], "hi": item.clim[1],
                             "gradient": ", ".join(stops[::-1])})
        elif item.kind == "lines":
            seg = _segments(poly)
            if not len(seg):
                continue
            obj.update(mode="lines", indices=_b64(seg), colors=_b64(_vertex_colors(item)), lit=False,
                       normals=None)
        objects.append(obj)
    b = scene.bounds()
    bg = [int(255 * c) for c in _resolve_bg(scene.background)]
    rot = np.stack([camera.right, np.asarray(camera.view_up, float), -camera.direction])
    return {"objects": objects, "labels": labels, "bars": bars, "center": b.mean(0).tolist(),
            "radius": float(np.linalg.norm(b[1] - b[0]) / 2.0), "scale": camera.parallel_scale,
            "rotation": rot.ravel().tolist(), "background": bg}


def _resolve_bg(color):
    from .scene import resolve_color

    return resolve_color(color)


def export_html(scene: Scene, path, view: str = "frontal", *, title: str = "medface scene") -> Path:
    """Write a standalone HTML file a person can rotate (drag), zoom (wheel) and reset (R) in a browser.

    Everything is inline (a ~150-line WebGL viewer and the geometry as base64): no script or
    data is fetched from anywhere. Surfaces keep their colours and scalar colour maps, CT
    slices their grey values, outlines and landmark labels are drawn; returns the path.
    """
    path = _out_path(path)
    camera = scene_camera(scene, view, (1000, 800))
    payload = json.dumps(_html_payload(scene, camera), separators=(",", ":"))
    text = _HTML_TEMPLATE.replace("__TITLE__", _html.escape(title)).replace("__DATA__", payload)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the HTML file: {exc.strerror}", path=path) from None
    return path


_HTML_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>html,body{margin:0;height:100%;overflow:hidden;font-family:sans-serif}
canvas{width:100%;height:100%;display:block}
.lbl{position:absolute;font-size:11px;padding:0 2px;background:rgba(255,255,255,.6);pointer-events:none;
transform:translate(4px,-50%)}
#help{position:absolute;left:8px;bottom:6px;font-size:12px;color:#555}
.bar{position:absolute;right:16px;top:15%;height:60%;width:18px;border:1px solid #444}
.bart{position:absolute;right:8px;font-size:12px}</style></head>
<body><canvas id="c"></canvas><div id="help">__TITLE__ &middot; drag: rotate &middot; wheel: zoom &middot;
shift-drag: pan &middot; R: reset</div>
<script>
"use strict";
const D=__DATA__;
function dec(s,T){const b=atob(s),u=new Uint8Array(b.length);for(let i=0;i<b.length;i++)u[i]=b.charCodeAt(i);
return new T(u.buffer);}
const cv=document.getElementById("c"),gl=cv.getContext("webgl2",{antialias:true});
if(!gl){document.body.innerHTML="<p>This viewer needs WebGL 2.</p>";throw new Error("no webgl2");}
const VS=`#version 300 es
in vec3 p;in vec3 n;in vec3 c;uniform mat3 R;uniform vec3 C;uniform vec3 S;uniform vec2 T;out vec3 vc;out vec3 vn;
void main(){vec3 q=R*(p-C);gl_Position=vec4((q.x+T.x)*S.x,(q.y+T.y)*S.y,-q.z*S.z,1.0);vc=c;vn=R*n;}`;
const FS=`#version 300 es
precision highp float;in vec3 vc;in vec3 vn;uniform float A;uniform float L;out vec4 o;
void main(){vec3 col=vc;if(L>0.5){float d=abs(normalize(vn).z);col=vc*(0.3+0.7*d)+vec3(0.15)*pow(d,20.0);}
o=vec4(col,A);}`;
function sh(t,s){const x=gl.createShader(t);gl.shaderSource(x,s);gl.compileShader(x);
if(!gl.getShaderParameter(x,gl.COMPILE_STATUS))throw new Error(gl.getShaderInfoLog(x));return x;}
const pr=gl.createProgram();gl.attachShader(pr,sh(gl.VERTEX_SHADER,VS));gl.attachShader(pr,sh(gl.FRAGMENT_SHADER,FS));
gl.linkProgram(pr);gl.useProgram(pr);
const U={};for(const k of["R","C","S","T","A","L"])U[k]=gl.getUniformLocation(pr,k);
const AT={p:gl.getAttribLocation(pr,"p"),n:gl.getAttribLocation(pr,"n"),c:gl.getAttribLocation(pr,"c")};
function buf(data,loc,size,type,norm){const b=gl.createBuffer();gl.bindBuffer(gl.ARRAY_BUFFER,b);
gl.bufferData(gl.ARRAY_BUFFER,data,gl.STATIC_DRAW);gl.enableVertexAttribArray(loc);
gl.vertexAttribPointer(loc,size,type,norm,0,0);}
const objs=D.objects.map(o=>{const va=gl.createVertexArray();gl.bindVertexArray(va);
const P=dec(o.positions,Float32Array);buf(P,AT.p,3,gl.FLOAT,false);
if(o.normals)buf(dec(o.normals,Float32Array),AT.n,3,gl.FLOAT,false);else{gl.disableVertexAttribArray(AT.n);
gl.vertexAttrib3f(AT.n,0,0,1);}
buf(dec(o.colors,Uint8Array),AT.c,3,gl.UNSIGNED_BYTE,true);
const I=dec(o.indices,Uint32Array),ib=gl.createBuffer();gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER,ib);
gl.bufferData(gl.ELEMENT_ARRAY_BUFFER,I,gl.STATIC_DRAW);gl.bindVertexArray(null);
return{va:va,count:I.length,mode:o.mode==="lines"?gl.LINES:gl.TRIANGLES,a:o.opacity,lit:o.lit?1:0};});
const R0=D.rotation.slice();let R=R0.slice(),scale=D.scale,pan=[0,0];
const labels=D.labels.map(l=>{const e=document.createElement("div");e.className="lbl";e.textContent=l.text;
document.body.appendChild(e);return{e:e,p:l.p};});
for(const b of D.bars){const e=document.createElement("div");e.className="bar";
e.style.background="linear-gradient("+b.gradient+")";document.body.appendChild(e);
for(const[v,top]of[[b.hi,"12%"],[b.lo,"76%"]]){const t=document.createElement("div");t.className="bart";
t.style.top=top;t.textContent=v.toFixed(1)+" "+b.title;document.body.appendChild(t);}}
function mul(a,b){const r=new Array(9);for(let i=0;i<3;i++)for(let j=0;j<3;j++)
r[3*i+j]=a[3*i]*b[j]+a[3*i+1]*b[3+j]+a[3*i+2]*b[6+j];return r;}
function rot(ax,ang){const c=Math.cos(ang),s=Math.sin(ang);return ax===0?[1,0,0,0,c,-s,0,s,c]:[c,0,s,0,1,0,-s,0,c];}
function draw(){const w=cv.clientWidth,h=cv.clientHeight,dpr=window.devicePixelRatio||1;
if(cv.width!==w*dpr||cv.height!==h*dpr){cv.width=w*dpr;cv.height=h*dpr;}
gl.viewport(0,0,cv.width,cv.height);const bg=D.background;gl.clearColor(bg[0]/255,bg[1]/255,bg[2]/255,1);
gl.clear(gl.COLOR_BUFFER_BIT|gl.DEPTH_BUFFER_BIT);gl.enable(gl.DEPTH_TEST);
const sy=1/scale,sx=sy*h/w,sz=1/(D.radius*1.5);
gl.uniformMatrix3fv(U.R,true,R);gl.uniform3fv(U.C,D.center);gl.uniform3f(U.S,sx,sy,sz);gl.uniform2f(U.T,pan[0],pan[1]);
for(const pass of[0,1]){for(const o of objs){const tr=o.a<0.999;if(tr!==(pass===1))continue;
if(tr){gl.enable(gl.BLEND);gl.blendFunc(gl.SRC_ALPHA,gl.ONE_MINUS_SRC_ALPHA);gl.depthMask(false);}
else{gl.disable(gl.BLEND);gl.depthMask(true);}
gl.uniform1f(U.A,o.a);gl.uniform1f(U.L,o.lit);gl.bindVertexArray(o.va);gl.drawElements(o.mode,o.count,gl.UNSIGNED_INT,0);}}
gl.depthMask(true);
for(const l of labels){const d=[l.p[0]-D.center[0],l.p[1]-D.center[1],l.p[2]-D.center[2]];
const x=R[0]*d[0]+R[1]*d[1]+R[2]*d[2],y=R[3]*d[0]+R[4]*d[1]+R[5]*d[2];
l.e.style.left=((x+pan[0])*sx*0.5+0.5)*w+"px";l.e.style.top=(0.5-(y+pan[1])*sy*0.5)*h+"px";}}
let drag=null;cv.addEventListener("mousedown",e=>{drag={x:e.clientX,y:e.clientY,pan:e.shiftKey};});
window.addEventListener("mouseup",()=>{drag=null;});
window.addEventListener("mousemove",e=>{if(!drag)return;const dx=e.clientX-drag.x,dy=e.clientY-drag.y;
drag.x=e.clientX;drag.y=e.clientY;if(drag.pan){const k=2*scale/cv.clientHeight;pan[0]+=dx*k;pan[1]-=dy*k;}
else{R=mul(rot(1,dx*0.01),mul(rot(0,dy*0.01),R));}draw();});
cv.addEventListener("wheel",e=>{e.preventDefault();scale*=Math.exp(e.deltaY*0.001);draw();},{passive:false});
window.addEventListener("keydown",e=>{if(e.key==="r"||e.key==="R"){R=R0.slice();scale=D.scale;pan=[0,0];draw();}});
window.addEventListener("resize",draw);draw();
</script></body></html>
"""
