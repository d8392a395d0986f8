"""The pages of Anytown Council housing's demo website (Jinja templates, kept as strings)."""

from __future__ import annotations

BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} - Anytown Council housing</title>
<style>
 body{font-family:Arial,sans-serif;margin:0;color:#0b0c0c;line-height:1.4}
 header{background:#1d4f91;color:#fff;padding:12px 20px;font-weight:bold;font-size:20px}
 main{max-width:780px;margin:0 auto;padding:20px}
 table{border-collapse:collapse;width:100%;margin-bottom:20px}
 th,td{text-align:left;border-bottom:1px solid #b1b4b6;padding:6px 8px;vertical-align:top}
 button{background:#00703c;color:#fff;border:0;padding:10px 16px;font-size:18px;cursor:pointer}
 .note{border-left:6px solid #1d4f91;padding:6px 12px;background:#f3f2f1}
 .contested{color:#d4351c;font-weight:bold}
 code{word-break:break-all}
 form.work{border:1px solid #b1b4b6;padding:12px 16px;margin:12px 0 24px}
 form.work label{display:block;font-weight:bold;margin-top:10px}
 form.work fieldset{border:0;padding:0;margin:10px 0 0}
 form.work legend{font-weight:bold}
 form.work fieldset label{display:inline;font-weight:normal;margin-right:12px}
 form.work input[type=text],form.work textarea{width:100%;box-sizing:border-box;font-size:16px}
 form.work button{margin-top:12px}
</style></head>
<body><header>Anytown Council &middot; Housing options</header>
<main>{% block main %}{% endblock %}</main></body></html>"""

START = """{% extends "base.html" %}{% block title %}Ask Tell Once{% endblock %}{% block main %}
<h1>Ask Tell Once for Sam's information</h1>
<p>Sam has asked us for help to find somewhere safe to stay (case {{ asked.case_reference }}).
Sam keeps their information in Tell Once, so they do not have to tell us everything again.</p>
<p>When you press the button, Tell Once will show Sam what we are asking for, and Sam decides.
We are asking for:</p>
<ul>{% for key in asked.data_points %}<li>{{ what_we_ask[key] }}
{%- if key in asked.optional %} (Sam can choose not to share this){% endif %}</li>{% endfor %}
<li>what Sam has written about housing</li></ul>
<p>We ask to see it for {{ asked.duration_days }} days, at most {{ asked.max_fetches }} times,
and we will keep what we get for {{ asked.data_life_days }} days. Sam can stop this at any time,
and every look we take is written in Tell Once's public ledger.</p>
<form method="post" action="/ask"><button>Ask Tell Once for Sam's information</button></form>
{% endblock %}"""

CASE = """{% extends "base.html" %}{% block title %}Case {{ data.case_reference }}{% endblock %}
{% block main %}
<h1>What Sam shared with us</h1>
{% if note %}<p class="note" role="status">{{ note }}</p>{% endif %}
<p>Case {{ data.case_reference }}. Sam is known to us as <code>{{ data.subject }}</code>
(an id only we get).</p>
<table><thead><tr><th>What</th><th>Value</th><th>Version</th><th>Source</th><th>Contested</th>
</tr></thead>
<tbody>{% for point in data.data_points %}<tr><td>{{ point.label }}</td>
<td>{{ show(point.key, point.value) }}</td><td>{{ point.version }}</td><td>{{ point.source }}</td>
<td>{% if point.contested %}<span class="contested">Yes: Sam says this is wrong</span>
{%- else %}No{% endif %}</td></tr>
{% endfor %}</tbody></table>
{% for part in data.story %}
<h2>What Sam wrote about {{ part.topic }} (version {{ part.version }})</h2>
<p>{{ part.text }}</p>{% endfor %}
{% if left_out %}<p class="note">Sam chose not to share: {{ left_out | join(", ") }}.</p>
{% endif %}
<p>We may look {{ data.fetches_left }} more times, until {{ when(data.ends_at) }}.</p>
<p>Tell Once wrote this look in its public ledger as entry {{ data.receipt.ledger_index }}
(<a href="{{ issuer }}/ledger/entries?start={{ data.receipt.ledger_index }}&amp;end={{
data.receipt.ledger_index + 1 }}">see it</a>), access id <code>{{ data.receipt.access_id }}</code>,
leaf hash <code>{{ data.receipt.leaf_hash }}</code>.</p>
<form method="post" action="/fetch-again"><button>Fetch again</button></form>
{% include "messages.html" %}
{% include "decide.html" %}
{% include "challenges.html" %}
<p><a href="/">Start again</a></p>
{% endblock %}"""

MESSAGES = """<h2>Messages from Tell Once</h2>
{% if messages %}<ul>{% for notice in messages %}
<li><strong>{{ at(notice.happened_at) }}</strong>: {{ message_words(notice) }}</li>
{% endfor %}</ul>
{% else %}<p>None yet. Tell Once tells us here when Sam stops sharing, says something we
were given is wrong, or when it is corrected.</p>{% endif %}"""

DECIDE = """<h2>Record a decision</h2>
<p>Tell Once shows Sam what we decided, why, who answers for it, and exactly which versions
of Sam's information we used.</p>
<form class="work" method="post" action="/decisions">
<label for="title">What the decision is about</label>
<input type="text" id="title" name="title" value="Emergency housing">
<label for="outcome">What we decided</label>
<input type="text" id="outcome" name="outcome" value="You can stay at Elm House from tonight.">
<label for="reasons">Why</label>
<textarea id="reasons" name="reasons" rows="3">You have nowhere safe to stay, and your address \
and income show you cannot find somewhere yourself.</textarea>
<fieldset><legend>Did a computer system decide?</legend>
<input type="radio" id="automated-yes" name="automated" value="yes" checked>
<label for="automated-yes">Yes</label>
<input type="radio" id="automated-no" name="automated" value="no">
<label for="automated-no">No, a person did</label></fieldset>
<label for="algorithm_name">The system's name (if a computer decided)</label>
<input type="text" id="algorithm_name" name="algorithm_name" value="Priority need screener">
<label for="algorithm_version">The system's version</label>
<input type="text" id="algorithm_version" name="algorithm_version" value="2.3.1">
<label for="officer_name">The person accountable for it</label>
<input type="text" id="officer_name" name="officer_name" value="{{ officer.name }}">
<label for="officer_role">Their role</label>
<input type="text" id="officer_role" name="officer_role" value="{{ officer.role }}">
<fieldset><legend>What we used from Tell Once</legend>
{% for point in data.data_points %}<div>
<input type="checkbox" id="used-{{ loop.index }}" name="used"
 value="{{ point.key }}@{{ point.version }}" checked>
<label for="used-{{ loop.index }}">{{ what(point.key) }}, version {{ point.version }}</label>
</div>{% endfor %}</fieldset>
<button>Record the decision</button>
</form>
{% if decisions %}<h2>Decisions we recorded</h2>{% endif %}
{% for decision in decisions %}
<h3>{{ decision.title }} (version {{ decision.version }}: {{ decision.kind }})</h3>
<p>{{ decision.outcome }}</p>
<p>Used: {% for used in decision.data_points_used %}{{ what(used.key) }} version
{{ used.version }}{% if not loop.last %}, {% endif %}{% endfor %}.
Tell Once's id for it: <code>{{ decision.id }}</code>.</p>
{% set id = decision.id %}
<form class="work" method="post" action="/decisions/{{ id }}/review">
<fieldset><legend>Review the decision</legend>
<input type="radio" id="kind-adjusted-{{ id }}" name="kind" value="adjusted">
<label for="kind-adjusted-{{ id }}">Adjust it</label>
<input type="radio" id="kind-overturned-{{ id }}" name="kind" value="overturned" checked>
<label for="kind-overturned-{{ id }}">Overturn it</label>
<input type="radio" id="kind-upheld-{{ id }}" name="kind" value="upheld">
<label for="kind-upheld-{{ id }}">Keep it</label></fieldset>
<label for="reviewer_name-{{ id }}">Who reviewed it (not {{ officer.name }})</label>
<input type="text" id="reviewer_name-{{ id }}" name="reviewer_name">
<label for="reviewer_role-{{ id }}">Their role</label>
<input type="text" id="reviewer_role-{{ id }}" name="reviewer_role">
<label for="review_reasons-{{ id }}">Why</label>
<textarea id="review_reasons-{{ id }}" name="reasons" rows="2"></textarea>
<label for="review_outcome-{{ id }}">The new decision (leave empty to keep it)</label>
<input type="text" id="review_outcome-{{ id }}" name="outcome">
<button>Record the review</button>
</form>
{% endfor %}"""

CHALLENGES = """<h2>Challenges from people</h2>
{% if challenges_problem %}<p class="note">{{ challenges_problem }}</p>
{% elif not challenges %}<p>Sam has not said that anything we used is wrong.</p>{% endif %}
{% for challenge in challenges %}
<h3>{% if challenge.target == "data_point" %}{{ what(challenge.key) }} (version
{{ challenge.version }}){% else %}Our decision <code>{{ challenge.decision_id }}</code>
{% endif %}</h3>
<p>Sam says: {{ challenge.reason }}</p>
<p>Opened {{ at(challenge.opened_at) }}. We must answer by {{ when(challenge.due_at) }}
{%- if challenge.overdue %} (<span class="contested">late</span>){% endif %}.</p>
{% if challenge.status == "open" %}{% set id = challenge.id %}
<form class="work" method="post" action="/challenges/{{ id }}/answer">
<input type="hidden" name="key" value="{{ challenge.key or '' }}">
<fieldset><legend>Our answer</legend>
{% if challenge.key %}<input type="radio" id="corrected-{{ id }}" name="outcome"
 value="corrected" checked><label for="corrected-{{ id }}">Sam is right: corrected</label>
{% endif %}
<input type="radio" id="upheld-{{ id }}" name="outcome" value="upheld"
 {%- if not challenge.key %} checked{% endif %}><label for="upheld-{{ id }}">We checked and
 it is right</label>
<input type="radio" id="changed-{{ id }}" name="outcome" value="decision_changed">
<label for="changed-{{ id }}">We changed the decision</label></fieldset>
{% if challenge.key %}<label for="value-{{ id }}">The right value, if corrected (an address
on one line, the town and postcode last)</label>
<input type="text" id="value-{{ id }}" name="value">{% endif %}
<label for="answer_reasons-{{ id }}">Why</label>
<textarea id="answer_reasons-{{ id }}" name="reasons" rows="2"></textarea>
<button>Send our answer</button>
</form>
{% else %}<p>We answered {{ at(challenge.answered_at) }}: {{ challenge.status }}
{%- if challenge.corrected_version %} (now version {{ challenge.corrected_version }}){% endif %}.
{{ challenge.answer }}</p>{% endif %}
{% endfor %}"""

SAID_NO = """{% extends "base.html" %}{% block title %}Sam said no{% endblock %}{% block main %}
<h1>Sam said no</h1>
<p>Sam chose not to share their information with us through Tell Once, so we cannot see it.
That is Sam's choice to make. We can still help: ask Sam what they would like to tell us.</p>
<p><a href="/">Start again</a></p>
{% endblock %}"""

PROBLEM = """{% extends "base.html" %}{% block title %}Something went wrong{% endblock %}
{% block main %}<h1>Something went wrong</h1><p>{{ message }}</p>
<p><a href="/">Start again</a></p>{% endblock %}"""

TEMPLATES = {
    "base.html": BASE,
    "start.html": START,
    "case.html": CASE,
    "messages.html": MESSAGES,
    "decide.html": DECIDE,
    "challenges.html": CHALLENGES,
    "said_no.html": SAID_NO,
    "problem.html": PROBLEM,
}
