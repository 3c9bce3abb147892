"""Demo data for the example app: ``flask --app example_app seed``.

Demo rows belong in a command like this one, not in a migration: migrations run in production too, and
every environment would get the demo projects.
"""

from __future__ import annotations

from .models import Project, Tag, Task, User, db

USERS = [("ada@example.com", "Ada"), ("grace@example.com", "Grace")]
PROJECTS = {
    "Website": [
        ("Write the landing page", "doing", "Ada", ["content"]),
        ("Fix the broken signup link", "todo", "Grace", ["bug"]),
        ("Choose a font", "done", None, ["design"]),
    ],
    "Mobile app": [
        ("Crash on login with an empty password", "blocked", "Grace", ["bug", "ios"]),
        ("Dark mode", "todo", None, ["design"]),
    ],
}


def seed() -> bool:
    """Add the demo users, projects, tasks and tags; do nothing (and return False) if any project exists."""
    if db.session.execute(db.select(Project.id).limit(1)).first() is not None:
        return False
    users = {name: User(email=email, name=name) for email, name in USERS}
    tags: dict[str, Tag] = {}
    for project_name, tasks in PROJECTS.items():
        project = Project(name=project_name)
        for title, status, assignee, tag_names in tasks:
            task_tags = [tags.setdefault(name, Tag(name=name)) for name in tag_names]
            project.tasks.append(
                Task(
                    title=title,
                    status=status,
                    assignee=users[assignee] if assignee else None,
                    tags=task_tags,
                )
            )
        db.session.add(project)
    db.session.add_all(users.values())
    db.session.commit()
    return True
