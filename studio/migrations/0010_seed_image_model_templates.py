"""Templates carry their instruction in `prompt` (it was parameters["prompt"]); the seeded
expressions run on the server's default image model (`auto`) at the model's cost, and the
catalogue gains the rest of the expressions and prompt-driven styles."""

from __future__ import annotations

from django.db import migrations

KEEP = "keep identity, face shape, hair, clothing, lighting and background unchanged"
EXPRESSIONS = [
    (
        "Joyful Laugh",
        "A big, genuine laugh.",
        f"Make the person in this photo laugh joyfully: eyes crinkled, mouth open, cheeks raised; {KEEP}.",
    ),
    (
        "Gentle Smile",
        "A warm, closed-mouth smile.",
        f"Give the person in this photo a warm, gentle closed-mouth smile with soft eyes; {KEEP}.",
    ),
    (
        "Surprised",
        "Raised brows, open mouth: genuine surprise.",
        f"Make the person in this photo look genuinely surprised: eyebrows raised, eyes wide, mouth slightly open; {KEEP}.",
    ),
    (
        "Thoughtful",
        "Lost in thought.",
        f"Make the person in this photo look thoughtful: gaze slightly off to the side, relaxed mouth, a faint frown of concentration; {KEEP}.",
    ),
    (
        "Wink",
        "A playful one-eyed wink.",
        f"Make the person in this photo wink playfully with one eye, with a small smile; {KEEP}.",
    ),
    (
        "Serious",
        "Calm, composed, no smile.",
        f"Give the person in this photo a calm, serious expression: neutral mouth, steady direct gaze; {KEEP}.",
    ),
    (
        "Shy",
        "A bashful half-smile.",
        f"Make the person in this photo look shy: a bashful half-smile, eyes glancing down, a light blush; {KEEP}.",
    ),
    (
        "Angry",
        "Furrowed brows, tight lips.",
        f"Make the person in this photo look angry: brows drawn together, eyes narrowed, lips pressed tight; {KEEP}.",
    ),
]
KEEP_SUBJECT = "keep the subject, composition and pose recognisable"
STYLES = [
    (
        "Watercolor",
        "A loose watercolour painting.",
        f"Repaint this photo as a loose watercolour painting on textured paper, soft washes and visible brush blooms; {KEEP_SUBJECT}.",
    ),
    (
        "Anime",
        "A clean anime illustration.",
        f"Redraw this photo as a clean anime illustration with crisp line art, cel shading and bright eyes; {KEEP_SUBJECT}.",
    ),
    (
        "Clay",
        "A handmade claymation figure.",
        f"Turn this photo into a handmade claymation scene: plasticine textures, fingerprints, soft studio light; {KEEP_SUBJECT}.",
    ),
    (
        "Studio Portrait",
        "A professional studio headshot.",
        "Turn this photo into a professional studio portrait: soft key light, neutral grey backdrop, shallow depth of field; keep the person's identity and clothing.",
    ),
]


def forwards(apps, schema_editor):
    Template = apps.get_model("studio", "Template")
    for template in Template.objects.exclude(engine="builtin"):
        if "prompt" in template.parameters:
            template.prompt = template.parameters.pop("prompt")
            template.save(update_fields=["prompt", "parameters"])
    for type_, entries, first_order in (("expressions", EXPRESSIONS, 200), ("styles", STYLES, 300)):
        for offset, (name, description, prompt) in enumerate(entries):
            Template.objects.update_or_create(
                type=type_,
                name=name,
                defaults={
                    "description": description,
                    "engine": "auto",
                    "prompt": prompt,
                    "parameters": {},
                    "credit_cost": None,
                    "sort_order": first_order + offset,
                },
            )


def backwards(apps, schema_editor):
    Template = apps.get_model("studio", "Template")
    for template in Template.objects.exclude(engine="builtin"):
        if template.prompt:
            template.parameters["prompt"] = template.prompt
            template.save(update_fields=["parameters"])
    Template.objects.filter(engine="auto").update(engine="upstream")
    Template.objects.filter(credit_cost=None).update(credit_cost=1)


class Migration(migrations.Migration):
    dependencies = [("studio", "0009_template_prompt_model")]

    operations = [migrations.RunPython(forwards, backwards)]
