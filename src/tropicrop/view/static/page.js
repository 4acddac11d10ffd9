/* tropicrop view: the page's behaviour. Reads the JSON in #tc-data and needs nothing but Leaflet, inlined
   above it: every image is a data: URI, so the page never asks the network for anything. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tc-data").textContent);
  var months = data.months;
  var BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
  var current = 0;
  var timer = null;

  function escapeHtml(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
    });
  }
  function percent(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(0) + " %"; }
  function monthLabel(iso) {
    var d = new Date(iso + "T00:00:00Z");
    return d.toLocaleDateString("en-GB", {month: "long", year: "numeric", timeZone: "UTC"}) + " (" + iso + ")";
  }
  var colourOf = {};
  data.classes.forEach(function (c) { colourOf[c.name] = c.color; });

  var map = L.map("map", {zoomSnap: 0.25});
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution("tropicrop " + escapeHtml(data.version) + " · Leaflet " + L.version);

  var first = months[0];
  var composite = L.imageOverlay(first.composite || BLANK, first.bounds, {className: "tc-composite", zIndex: 1});
  var classes = L.imageOverlay(first.classes, first.bounds, {className: "tc-classes", zIndex: 2});
  var confidence = L.imageOverlay(first.confidence || BLANK, first.bounds, {className: "tc-confidence", zIndex: 3});
  classes.once("load", function () {
    requestAnimationFrame(function () { performance.mark("first-overlay"); });
  });
  classes.addTo(map);
  var all = L.latLngBounds(first.bounds);
  months.forEach(function (m) { all.extend(m.bounds); });
  map.fitBounds(all);

  var parcels = null;
  if (data.parcels) {
    parcels = L.geoJSON(data.parcels, {
      style: parcelStyle,
      onEachFeature: function (feature, layer) { layer.bindPopup(function () { return parcelPopup(feature); }); }
    }).addTo(map);
  }
  function answerOf(feature) {
    var answers = feature.properties.months;
    return answers ? answers[months[current].date] : null;
  }
  function parcelStyle(feature) {  // dark outlines read on every class colour; a month without an answer dashed
    var answer = answerOf(feature);
    var answered = !feature.properties.months || (answer && answer[0]);
    return {color: "#1a1a1a", weight: 1.5, opacity: 0.9, fill: true, fillOpacity: 0, dashArray: answered ? null : "4 4"};
  }
  function parcelPopup(feature) {
    var html = "<div class=\"tc-popup\"><table>";
    var attrs = feature.properties.attrs || {};
    Object.keys(attrs).forEach(function (k) {
      html += "<tr><th>" + escapeHtml(k) + "</th><td colspan=\"3\">" + escapeHtml(attrs[k]) + "</td></tr>";
    });
    var answers = feature.properties.months;
    if (answers) {
      html += "<tr><th>date</th><th>class</th><th>share</th><th>probability</th></tr>";
      Object.keys(answers).sort().forEach(function (date) {
        var a = answers[date];
        html += "<tr" + (date === months[current].date ? " class=\"current\"" : "") + "><td>" + date + "</td><td>" +
          escapeHtml(a[0] || "no prediction") + "</td><td>" + percent(a[1]) + "</td><td>" + percent(a[2]) + "</td></tr>";
      });
    }
    return html + "</table></div>";
  }

  var base = {"none": L.layerGroup().addTo(map)};
  if (months.some(function (m) { return m.composite; })) { base["VV / VH composite"] = composite; }
  var overlays = {"crop classes": classes};
  if (months.some(function (m) { return m.confidence; })) { overlays["confidence"] = confidence; }
  if (parcels) { overlays["parcels"] = parcels; }
  L.control.layers(base, overlays, {collapsed: false, position: "topright"}).addTo(map);

  var Panel = L.Control.extend({
    options: {position: "topright", html: "", className: ""},
    onAdd: function () {
      var div = L.DomUtil.create("div", "tc-panel " + this.options.className);
      div.innerHTML = this.options.html;
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    }
  });

  var legend = "<h3>Classes</h3><ul>" + data.classes.map(function (c) {
    return "<li><span class=\"tc-swatch\" style=\"background:" + c.color + "\"></span>" + escapeHtml(c.name) + "</li>";
  }).join("") + "</ul>";
  if (overlays["confidence"]) {
    legend += "<h3>Confidence</h3><div class=\"tc-ramp\" style=\"background:linear-gradient(to right," +
      data.confidence_ramp.join(",") + ")\"></div><div class=\"tc-ramp-labels\"><span>0 %</span><span>50 %</span>" +
      "<span>100 %</span></div>";
  }
  if (data.note) { legend += "<div class=\"tc-note\">" + escapeHtml(data.note) + "</div>"; }
  new Panel({html: legend, className: "tc-legend"}).addTo(map);

  var options = months.map(function (m, i) { return "<option value=\"" + i + "\" label=\"" + m.date + "\"></option>"; });
  new Panel({position: "bottomleft", className: "tc-months", html:
    "<button type=\"button\" class=\"tc-play\" title=\"play the months\" aria-label=\"play\">▶</button>" +
    "<input type=\"range\" id=\"tc-month\" min=\"0\" max=\"" + (months.length - 1) + "\" step=\"1\" value=\"0\" " +
    "list=\"tc-month-list\" aria-label=\"month\"><datalist id=\"tc-month-list\">" + options.join("") + "</datalist>" +
    "<span class=\"tc-date\"></span>"}).addTo(map);
  L.control.scale({position: "bottomleft", imperial: false}).addTo(map);
  var HINT = "lat, lon under the cursor";
  new Panel({position: "bottomleft", className: "tc-coords", html: HINT}).addTo(map);
  if (data.chart) { new Panel({position: "bottomright", className: "tc-chart-panel", html: data.chart}).addTo(map); }

  var slider = document.getElementById("tc-month");
  var play = document.querySelector(".tc-play");
  var coords = document.querySelector(".tc-coords");
  var dateLabel = document.querySelector(".tc-date");

  function setMonth(i) {
    current = i;
    var m = months[i];
    classes.setUrl(m.classes).setBounds(L.latLngBounds(m.bounds));
    confidence.setUrl(m.confidence || BLANK).setBounds(L.latLngBounds(m.bounds));
    composite.setUrl(m.composite || BLANK).setBounds(L.latLngBounds(m.bounds));
    slider.value = String(i);
    dateLabel.textContent = monthLabel(m.date);
    if (parcels) { parcels.setStyle(parcelStyle); }
    document.querySelectorAll(".tc-chart circle").forEach(function (c) {
      c.classList.toggle("current", c.getAttribute("data-date") === m.date);
    });
  }
  slider.addEventListener("input", function () { setMonth(Number(slider.value)); });
  play.addEventListener("click", function () {
    if (timer !== null) {
      clearInterval(timer); timer = null; play.textContent = "▶"; return;
    }
    play.textContent = "⏸";
    timer = setInterval(function () { setMonth((current + 1) % months.length); }, 1000);
  });
  map.on("mousemove", function (e) {
    coords.textContent = e.latlng.lat.toFixed(5) + "°, " + e.latlng.lng.toFixed(5) + "°";
  });
  map.on("mouseout", function () { coords.textContent = HINT; });
  setMonth(0);
  window.tropicropView = {map: map, classes: classes, confidence: confidence, composite: composite,
    parcels: parcels, months: months, setMonth: setMonth};
})();
