"""What the person at the computer sees and answers.

Consent is asked here, on the computer that would be seen or controlled, never on a web
page (which may be open on another device). Two front ends:

- `TerminalUI`: questions, notices and chat in the terminal the agent was started from;
  answers and commands are typed there (``y``/``n``, ``/stop``, ``/quit``, …).
- `TkUI`: the same terminal, plus small always-on-top windows: a consent dialog (Allow /
  Don't allow), and while the computer is controlled a red bar at the top of the screen
  saying who controls it, with a "Stop control" button. It runs Tk on a thread of its own
  and is used when Tk and a display are available (``--ui auto``).

A question no longer needed (the technician withdrew the request, the share stopped) is
withdrawn and counts as "no".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import gc
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol, TextIO

YES = {"y", "yes", "j", "ja", "o", "oui", "s", "si", "sí"}
BANNER_TITLE = "Remote control active"
DIALOG_TITLE = "Support request"


class UI(Protocol):
    lines: asyncio.Queue[str | None]

    def start(self, on_stop_control: Callable[[], None]) -> None: ...
    def say(self, text: str) -> None: ...
    async def ask(self, key: str, question: str) -> bool: ...
    def withdraw(self, key: str) -> None: ...
    def controlled(self, by: str | None, hotkey: str) -> None: ...
    def close(self) -> None: ...


@dataclasses.dataclass(slots=True)
class _Question:
    key: str
    text: str
    answer: asyncio.Future[bool]


class TerminalUI:
    """Questions and notices in the terminal; typed lines are answers, commands or chat."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._questions: collections.deque[_Question] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_stop_control: Callable[[], None] = lambda: None

    def start(self, on_stop_control: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_stop_control = on_stop_control
        # A daemon thread: a blocking read of stdin cannot be interrupted portably.
        threading.Thread(target=self._read_stdin, name="stdin", daemon=True).start()

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    async def ask(self, key: str, question: str) -> bool:
        assert self._loop is not None, "start() first"
        question_ = _Question(key, question, self._loop.create_future())
        self._questions.append(question_)
        if len(self._questions) == 1:
            self._prompt()
        return await question_.answer

    def withdraw(self, key: str) -> None:
        for question in list(self._questions):
            if question.key == key:
                was_first = question is self._questions[0]
                self._questions.remove(question)
                if not question.answer.done():
                    question.answer.set_result(False)
                if was_first and self._questions:
                    self._prompt()

    def answer(self, key: str, value: bool) -> None:
        """Answer a question from elsewhere (a dialog window)."""
        for question in list(self._questions):
            if question.key == key:
                was_first = question is self._questions[0]
                self._questions.remove(question)
                if not question.answer.done():
                    question.answer.set_result(value)
                    self.say("  -> " + ("allowed" if value else "not allowed"))
                if was_first and self._questions:
                    self._prompt()

    def controlled(self, by: str | None, hotkey: str) -> None:
        if by:
            self.say(f"*** {by} is controlling this computer. To stop: type /stop and "
                     f"Enter, or press {hotkey}. ***")
        else:
            self.say("*** Remote control has ended. ***")

    def close(self) -> None:
        for question in self._questions:
            if not question.answer.done():
                question.answer.set_result(False)
        self._questions.clear()

    def _prompt(self) -> None:
        self.say(f"{self._questions[0].text} Allow? [y/N]")

    def _read_stdin(self) -> None:
        try:
            for line in self._in:
                self._deliver(line.rstrip("\r\n"))
        except (OSError, ValueError):
            pass
        self._deliver(None)

    def _deliver(self, line: str | None) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._line, line)

    def _line(self, line: str | None) -> None:
        if line is not None and self._questions:
            question = self._questions[0]
            self.answer(question.key, line.strip().lower() in YES)
            return
        if line is not None and line.strip() == "/stop":
            self._on_stop_control()
            return
        self.lines.put_nowait(line)


def tk_available() -> bool:
    try:
        import tkinter

        root = tkinter.Tk()
        root.destroy()
    except Exception:
        return False
    return True


class TkUI(TerminalUI):
    """The terminal, plus consent dialogs and the control bar as Tk windows."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        super().__init__(stdin, stdout)
        self._calls: queue.Queue[Callable[[Any], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._dialogs: dict[str, Any] = {}
        self._banner: Any = None

    def start(self, on_stop_control: Callable[[], None]) -> None:
        super().start(on_stop_control)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="tk",
                                        daemon=True)
        self._thread.start()
        ready.wait(10)

    async def ask(self, key: str, question: str) -> bool:
        self._calls.put(lambda root: self._dialog(root, key, question))
        try:
            return await super().ask(key, question)
        finally:
            self._calls.put(lambda root: self._close_dialog(key))

    def controlled(self, by: str | None, hotkey: str) -> None:
        super().controlled(by, hotkey)
        self._calls.put(lambda root: self._show_banner(root, by, hotkey))

    def close(self) -> None:
        super().close()
        self._calls.put(lambda root: root.quit())
        if self._thread is not None:
            self._thread.join(5)

    # -- on the Tk thread ----------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        try:
            self._mainloop(ready)
        finally:
            # Tk objects must die on the thread that made them (else Tcl aborts the process).
            self._dialogs.clear()
            self._banner = None
            gc.collect()

    def _mainloop(self, ready: threading.Event) -> None:
        import tkinter

        root = tkinter.Tk()
        root.withdraw()
        root.title("Support agent")

        def pump() -> None:
            while True:
                try:
                    call = self._calls.get_nowait()
                except queue.Empty:
                    break
                try:
                    call(root)
                except Exception as exc:  # a window that is already gone, and the like
                    self._from_tk(functools.partial(self.say, f"(window error: {exc})"))
            root.after(50, pump)

        root.after(50, pump)
        ready.set()
        try:
            root.mainloop()
        finally:
            with contextlib.suppress(Exception):
                root.destroy()

    def _from_tk(self, call: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(call)

    def _dialog(self, root: Any, key: str, question: str) -> None:
        import tkinter

        window = tkinter.Toplevel(root)
        window.title(DIALOG_TITLE)
        window.attributes("-topmost", True)
        window.resizable(False, False)
        tkinter.Label(window, text=question, wraplength=420, justify="left",
                      padx=16, pady=12).pack()
        buttons = tkinter.Frame(window, pady=8)
        buttons.pack()

        def choose(value: bool) -> None:
            self._from_tk(lambda: self.answer(key, value))
            self._close_dialog(key)

        tkinter.Button(buttons, text="Allow", width=12,
                       command=lambda: choose(True)).pack(side="left", padx=8)
        tkinter.Button(buttons, text="Don't allow", width=12,
                       command=lambda: choose(False)).pack(side="left", padx=8)
        window.protocol("WM_DELETE_WINDOW", lambda: choose(False))
        window.update_idletasks()
        x = (window.winfo_screenwidth() - window.winfo_reqwidth()) // 2
        y = (window.winfo_screenheight() - window.winfo_reqheight()) // 3
        window.geometry(f"+{x}+{y}")
        self._dialogs[key] = window

    def _close_dialog(self, key: str) -> None:
        window = self._dialogs.pop(key, None)
        if window is not None:
            window.destroy()

    def _show_banner(self, root: Any, by: str | None, hotkey: str) -> None:
        import tkinter

        if self._banner is not None:
            self._banner.destroy()
            self._banner = None
        if not by:
            return
        banner = tkinter.Toplevel(root, background="#b00020")
        banner.title(BANNER_TITLE)
        banner.overrideredirect(True)
        banner.attributes("-topmost", True)
        tkinter.Label(banner, text=f"{by} is controlling this computer", fg="white",
                      bg="#b00020", font=("TkDefaultFont", 12, "bold"), padx=12, pady=6
                      ).pack(side="left")
        tkinter.Button(banner, text=f"Stop control ({hotkey})",
                       command=lambda: self._from_tk(self._on_stop_control)
                       ).pack(side="left", padx=8, pady=4)
        banner.update_idletasks()
        x = (banner.winfo_screenwidth() - banner.winfo_reqwidth()) // 2
        banner.geometry(f"+{max(0, x)}+0")
        self._banner = banner
