// Draws the dashboard's charts from the numbers the page embeds (#dashboard-data, minor
// units); a click on a bar opens the list behind it. Chart.js is served from our own
// static files (vendor/), never a CDN.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const node = document.getElementById("dashboard-data");
  if (!node || typeof Chart === "undefined") return;
  const data = JSON.parse(node.textContent);
  const scale = Math.pow(10, data.exponent);
  const major = (cents) => cents / scale;
  const opener = (links) => (event, elements) => {
    if (elements.length) window.location.href = links[elements[0].index];
  };
  Chart.defaults.animation = false; // screenshots and slow machines see the final chart
  Chart.defaults.maintainAspectRatio = false; // each chart fills its box's fixed height

  new Chart(document.getElementById("chart-revenue"), {
    type: "bar",
    data: {
      labels: data.revenue.labels,
      datasets: [
        { label: "Invoiced", data: data.revenue.invoiced.map(major), backgroundColor: "#417690" },
        { label: "Collected", data: data.revenue.collected.map(major), backgroundColor: "#79aec8" },
      ],
    },
    options: { onClick: opener(data.revenue.links), scales: { y: { beginAtZero: true } } },
  });

  new Chart(document.getElementById("chart-ageing"), {
    type: "bar",
    data: {
      labels: data.ageing.labels,
      datasets: [{
        label: "Owed",
        data: data.ageing.amounts.map(major),
        backgroundColor: ["#79aec8", "#e6b800", "#e67e00", "#d35400", "#ba2121"],
      }],
    },
    options: { onClick: opener(data.ageing.links), plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });

  const palette = ["#417690", "#ba2121", "#2e8b57", "#e67e00", "#6a5acd"];
  new Chart(document.getElementById("chart-usage"), {
    type: "line",
    data: {
      labels: data.usage.labels,
      datasets: data.usage.series.map((s, i) => ({ label: s.label, data: s.counts, borderColor: palette[i % palette.length], tension: 0.2 })),
    },
    options: { scales: { y: { beginAtZero: true } } },
  });
});
