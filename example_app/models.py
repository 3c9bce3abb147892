"""The example app's models. Migrations, not create_all(), build these tables."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class Project(db.Model):  # type: ignore[name-defined,misc]
    """A project holding tasks."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]

    def open_tasks(self) -> int:
        """How many of its tasks are not done."""
        return int(
            db.session.execute(
                db.select(db.func.count(Task.id)).where(Task.project_id == self.id, Task.done.is_(False))
            ).scalar_one()
        )


class Task(db.Model):  # type: ignore[name-defined,misc]
    """A task in a project."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(db.ForeignKey("projects.id"))
    title: Mapped[str]
    done: Mapped[bool] = mapped_column(default=False)
