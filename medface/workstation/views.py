"""The workstation's views: Slicer's slice and 3D views streamed to the page (trame-slicer's remote
views), set up for a server that renders on its CPU (Mesa's software rasteriser, no GPU), and the
3D view's reduced resolution while a live panel's control moves (docs/performance.md)."""

from __future__ import annotations

import asyncio

INTERACTIVE_SCALE = 0.5  # the 3D view's resolution (per side) while a panel control moves
STILL_AFTER_S = 0.5  # after the last move: this long, then one frame at full resolution


def register_views(view_manager, server):
    """Register the remote slice and 3D view factories; returns the 3D one.

    Each choice measured (docs/performance.md):

    - no multisampling (trame-slicer's views ask for 8 samples: a 3D frame of the sample skull,
      skin and mandible took 160-180 ms with them, 40-50 ms without);
    - no rendering while a view is being built (the views render on every property set until
      their streaming is attached: 244 renders, 0.7 s of start-up);
    - every frame encoded at still quality (JPEG 90), paced at up to 60 frames per second (no
      second frame encoded again after each move); the lower resolution while a slider moves
      is :class:`InteractiveResolution`'s.
    """
    from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui
    from trame_slicer.rca_view import RemoteViewFactory
    from trame_slicer.views import NoScheduleRendering, SliceView, ThreeDView, ViewType

    def quiet(view_class):
        def build(**kwargs):
            view = view_class(scheduled_render_strategy=NoScheduleRendering(), **kwargs)
            view.render_window().SetMultiSamples(0)
            return view
        return build

    factories = []
    for view_class, view_type, gutter in ((SliceView, ViewType.SLICE_VIEW, create_vertical_slice_view_gutter_ui),
                                          (ThreeDView, ViewType.THREE_D_VIEW, create_vertical_view_gutter_ui)):
        factories.append(RemoteViewFactory(server, quiet(view_class), view_type=view_type,
                                           populate_view_ui_f=gutter, target_fps=60.0, interactive_quality=90))
        view_manager.register_factory(factories[-1])
    return factories[-1]


class InteractiveResolution:
    """The 3D views at ``scale`` of their size while a control moves, at full size once it stops.

    :meth:`moving` (called on each slider move, before the view's render is scheduled) shrinks
    the render windows of the factory's views (trame-rca's view adapter scale: the page stretches
    the smaller image over the view) and (re)starts a timer; ``still_after_s`` after the last
    move, :meth:`still` puts them back to full size, which renders one full-resolution frame.
    Without a running event loop (no page: a test driving the app directly) nothing changes.
    """

    def __init__(self, factory, scale: float = INTERACTIVE_SCALE, still_after_s: float = STILL_AFTER_S):
        self.factory = factory
        self.scale, self.still_after_s = scale, still_after_s
        self._timer = None

    def _adapters(self) -> list:
        rca_views = (self.factory.get_factory_view(view.name) for view in self.factory.get_views())
        return [v.view_adapter for v in rca_views if v is not None]

    @property
    def interactive(self) -> bool:
        return self._timer is not None

    def moving(self) -> None:
        if self.scale >= 1:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for adapter in self._adapters():
            if adapter.scale != self.scale:
                adapter.scale = self.scale  # resizes the render window (and schedules a render)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self.still_after_s, self.still)

    def still(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for adapter in self._adapters():
            if adapter.scale != 1:
                adapter.scale = 1  # full size again: schedules the full-resolution frame
