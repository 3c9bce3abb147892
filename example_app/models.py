"""The example app's models.

The migrations in ``migrations/`` build these tables; ``db.create_all()`` is never called. The models only
describe what the migrations created, so a column the database fills itself (``updated_at``, kept by a trigger)
is marked as server-generated here, and the ``task_status`` enum is declared with ``create_type=False``: its
values are added by migrations (``20260202090000_add_status_blocked.sql``), not by SQLAlchemy.
"""

from __future__ import annotations

from datetime import datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, FetchedValue, ForeignKey, Table, func
from sqlalchemy.dialects.postgresql import ENUM
from sqlalchemy.orm import Mapped, mapped_column, relationship

db = SQLAlchemy()

#: The values of the ``task_status`` enum, in the order the migrations leave them.
STATUSES = ("todo", "doing", "blocked", "done")
task_status = ENUM(*STATUSES, name="task_status", create_type=False)

task_tags = Table(
    "task_tags",
    db.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class User(db.Model):  # type: ignore[name-defined,misc]
    """Someone tasks are assigned to."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    name: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    tasks: Mapped[list[Task]] = relationship(back_populates="assignee")


class Project(db.Model):  # type: ignore[name-defined,misc]
    """A project holding tasks."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    tasks: Mapped[list[Task]] = relationship(back_populates="project", order_by="Task.id")

    def open_tasks(self) -> int:
        """How many of its tasks are not done."""
        return int(
            db.session.execute(
                db.select(func.count(Task.id)).where(Task.project_id == self.id, Task.status != "done")
            ).scalar_one()
        )


class Tag(db.Model):  # type: ignore[name-defined,misc]
    """A label on tasks; names are lower case without surrounding spaces (a CHECK constraint says so)."""

    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    tasks: Mapped[list[Task]] = relationship(secondary=task_tags, back_populates="tags", order_by="Task.id")

    @staticmethod
    def normalize(name: str) -> str:
        """The stored form of a tag name (what the ``tags_name_normalized`` constraint requires)."""
        return name.strip().lower()


class Task(db.Model):  # type: ignore[name-defined,misc]
    """A task in a project, with a workflow status, an optional assignee and tags."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    title: Mapped[str]
    status: Mapped[str] = mapped_column(task_status, server_default="todo")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # 1 high, 2 normal, 3 low: added (20260210090000), backfilled in batches (20260211090000),
    # then made NOT NULL without a long lock (20260212090000).
    priority: Mapped[int] = mapped_column(server_default="2")
    # Set by the database (default now(), and the tasks_touch_updated_at trigger on every UPDATE).
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), server_onupdate=FetchedValue())

    project: Mapped[Project] = relationship(back_populates="tasks")
    assignee: Mapped[User | None] = relationship(back_populates="tasks")
    tags: Mapped[list[Tag]] = relationship(secondary=task_tags, back_populates="tasks", order_by="Tag.name")

    def to_json(self) -> dict[str, object]:
        """The task as the JSON API returns it."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "title": self.title,
            "status": self.status,
            "priority": self.priority,
            "assignee": self.assignee.email if self.assignee else None,
            "tags": [tag.name for tag in self.tags],
            "updated_at": self.updated_at.isoformat(),
        }
