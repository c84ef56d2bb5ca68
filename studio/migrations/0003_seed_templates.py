from __future__ import annotations

from django.db import migrations

# (type, name, description, engine, parameters)
TEMPLATES = [
    (
        "styles",
        "Vintage",
        "Faded sepia tones with a soft dark vignette.",
        "builtin",
        {"op": "vintage"},
    ),
    (
        "styles",
        "Pencil Sketch",
        "A graphite drawing of your photo.",
        "builtin",
        {"op": "pencil_sketch"},
    ),
    ("styles", "Pop Art", "Flat, loud poster colours.", "builtin", {"op": "pop_art"}),
    ("styles", "Cartoon", "Flat colour regions with inked edges.", "builtin", {"op": "cartoon"}),
    ("filters", "Grayscale", "Black and white.", "builtin", {"op": "grayscale"}),
    ("filters", "Sepia", "Warm brown monochrome.", "builtin", {"op": "sepia"}),
    ("filters", "Soft Blur", "A gentle Gaussian blur.", "builtin", {"op": "blur", "radius": 4}),
    ("filters", "Sharpen", "Crisper edges and detail.", "builtin", {"op": "sharpen"}),
    ("filters", "Emboss", "A raised, stamped relief.", "builtin", {"op": "emboss"}),
    ("filters", "Invert", "A colour negative.", "builtin", {"op": "invert"}),
    (
        "adjustments",
        "Brighten",
        "Lifts the exposure by 35%.",
        "builtin",
        {"op": "brightness", "factor": 1.35},
    ),
    (
        "adjustments",
        "High Contrast",
        "Deeper shadows, brighter highlights.",
        "builtin",
        {"op": "contrast", "factor": 1.5},
    ),
    (
        "adjustments",
        "Vivid Colors",
        "Richer, more saturated colour.",
        "builtin",
        {"op": "saturation", "factor": 1.8},
    ),
    (
        "adjustments",
        "Auto Contrast",
        "Stretches the tonal range to full.",
        "builtin",
        {"op": "auto_contrast"},
    ),
    ("frames", "Polaroid", "A white instant-photo border.", "builtin", {"op": "polaroid"}),
    (
        "frames",
        "Rounded Corners",
        "Soft rounded corners on white.",
        "builtin",
        {"op": "rounded_corners"},
    ),
    ("frames", "Black Frame", "A thin black border.", "builtin", {"op": "black_frame"}),
    (
        "frames",
        "Vignette",
        "Darkened edges that draw the eye in.",
        "builtin",
        {"op": "vignette", "strength": 0.6},
    ),
    (
        "expressions",
        "Joyful Laugh",
        "Makes the face in the photo laugh with joy.",
        "upstream",
        {
            "prompt": "Make the person in the photo laugh joyfully, keep identity, lighting and background unchanged."
        },
    ),
    (
        "expressions",
        "Surprised",
        "Raised brows, open mouth: genuine surprise.",
        "upstream",
        {
            "prompt": "Make the person in the photo look genuinely surprised, keep identity and background unchanged."
        },
    ),
    (
        "expressions",
        "Gentle Smile",
        "A warm, closed-mouth smile.",
        "upstream",
        {
            "prompt": "Give the person in the photo a warm gentle smile, keep identity and background unchanged."
        },
    ),
]


def seed_templates(apps, schema_editor):
    Template = apps.get_model("studio", "Template")
    for order, (type_, name, description, engine, parameters) in enumerate(TEMPLATES):
        Template.objects.update_or_create(
            type=type_,
            name=name,
            defaults={
                "description": description,
                "engine": engine,
                "parameters": parameters,
                "sort_order": order,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("studio", "0002_job_attempts_job_error_code_job_error_message_and_more")]

    operations = [migrations.RunPython(seed_templates, migrations.RunPython.noop)]
